"""Verifiable key delivery: a bad key is refunded on dispute, an honest one is paid, a forged
reveal takes nothing (issue 11, item 3), and a purchase names the offer it agreed to (item 6)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import delivery, errors
from contracts.chain import Chain
from contracts.models import LicenseStatus
from contracts.terms import TRAINING_ALLOWED, Purpose
from erasure import envelope

from .conftest import BUYER, DEPLOYER, OWNER, PRICE, STRANGER, Published, make_servable

SECRET = delivery.new_secret()
BUYER_KEY = delivery.public_key(SECRET)


@pytest_asyncio.fixture
async def published(chain: Chain, published: Published) -> Published:
    """The conftest dataset, made servable (an accepted deal): purchases need one."""
    await make_servable(chain, published.dataset_id, published.manifest.n)
    return published


async def _bought(chain: Chain, published: Published) -> int:
    return await chain.purchase(BUYER, published.dataset_id, Purpose.AI_TRAINING, BUYER_KEY)


async def _balances(chain: Chain) -> tuple[int, int]:
    return await chain.balance_of(OWNER.address), await chain.balance_of(BUYER.address)


async def _assert_refunded_on_dispute(chain: Chain, lic: int, sealed: delivery.Sealed) -> None:
    owner_before, buyer_before = await _balances(chain)
    escrow = await chain.balance_of(chain.deployment.license_manager)
    await chain.dispute(BUYER, lic, SECRET, sealed)
    assert (await chain.get_license(lic)).status == LicenseStatus.REJECTED
    assert await _balances(chain) == (owner_before, buyer_before + PRICE)
    assert await chain.rejected_deliveries(OWNER.address) == 1
    assert not await chain.is_license_valid(lic)
    await chain.advance_time(chain.deployment.dispute_window + 1)
    with pytest.raises(errors.NotDisputable):  # the owner is never paid for it
        await chain.claim_payment(OWNER, lic)
    assert await chain.balance_of(chain.deployment.license_manager) == escrow - PRICE


async def test_wrong_key_is_refunded_on_dispute(chain: Chain, published: Published) -> None:
    lic = await _bought(chain, published)
    wrong = delivery.seal(envelope.new_data_key(), BUYER_KEY, await chain.delivery_context(lic))
    await chain.deliver_key(OWNER, lic, wrong)
    assert await chain.balance_of(chain.deployment.license_manager) == PRICE  # escrow held
    assert await chain.delivery(lic) == wrong
    await _assert_refunded_on_dispute(chain, lic, wrong)


async def test_random_bytes_are_refunded_on_dispute(chain: Chain, published: Published) -> None:
    lic = await _bought(chain, published)
    garbage = delivery.Sealed(delivery.public_key(delivery.new_secret()), os.urandom(32))
    await chain.deliver_key(OWNER, lic, garbage)
    await _assert_refunded_on_dispute(chain, lic, garbage)


async def test_key_sealed_for_another_license_is_refunded(chain: Chain, published: Published) -> None:
    first, second = await _bought(chain, published), await _bought(chain, published)
    replayed = delivery.seal(published.key, BUYER_KEY, await chain.delivery_context(first))
    await chain.deliver_key(OWNER, second, replayed)  # right key, wrong license binding
    await _assert_refunded_on_dispute(chain, second, replayed)


async def test_invalid_point_is_refused_and_changes_nothing(chain: Chain, published: Published) -> None:
    lic = await _bought(chain, published)
    p = delivery.P
    for x, y in ((0, 0), (1, 1), (1, 2 + p), (p, 2)):
        bad = delivery.Sealed(x.to_bytes(32, "big") + y.to_bytes(32, "big"), os.urandom(32))
        with pytest.raises(errors.InvalidDeliveryPoint):
            await chain.send(chain.licenses.functions.deliverKey(lic, (x, y), bad.cipher), OWNER)
    assert (await chain.get_license(lic)).status == LicenseStatus.PENDING
    await chain.advance_time(chain.deployment.delivery_window + 1)
    _, buyer_before = await _balances(chain)
    await chain.refund(BUYER, lic)
    assert (await _balances(chain))[1] == buyer_before + PRICE


async def test_buyer_key_must_be_a_curve_point(chain: Chain, published: Published) -> None:
    ds, d = published.dataset_id, await chain.get_dataset(published.dataset_id)
    p = delivery.P
    for x, y in ((0, 0), (1, 1), (1, 2 + p), (p + 1, 2), (2**256 - 1, 2)):
        fn = chain.licenses.functions.purchase(ds, 0, (x, y), PRICE, d.terms_version, d.payment_token)
        with pytest.raises(errors.InvalidBuyerKey):
            await chain.send(fn, BUYER)


async def test_honest_delivery_false_dispute_fails_and_owner_is_paid_after_the_window(
    chain: Chain, published: Published
) -> None:
    lic = await _bought(chain, published)
    sealed = delivery.seal(published.key, BUYER_KEY, await chain.delivery_context(lic))
    await chain.deliver_key(OWNER, lic, sealed)
    assert delivery.open_sealed(sealed, SECRET, await chain.delivery_context(lic)) == published.key
    assert await chain.is_license_valid(lic)  # usable during the window
    with pytest.raises(errors.DeliveryIsValid):
        await chain.dispute(BUYER, lic, SECRET, sealed)
    with pytest.raises(errors.DisputeWindowOpen):
        await chain.claim_payment(STRANGER, lic)
    owner_before, buyer_before = await _balances(chain)
    await chain.advance_time(chain.deployment.dispute_window + 1)
    with pytest.raises(errors.DisputeWindowClosed):
        await chain.dispute(BUYER, lic, SECRET, sealed)
    await chain.claim_payment(STRANGER, lic)  # anyone may trigger it; the money goes to the owner
    assert await _balances(chain) == (owner_before + PRICE, buyer_before)
    record = await chain.get_license(lic)
    assert (record.status, record.paid) == (LicenseStatus.DELIVERED, True)
    assert await chain.rejected_deliveries(OWNER.address) == 0
    with pytest.raises(errors.NotDisputable):
        await chain.claim_payment(OWNER, lic)


async def test_undisputed_bad_delivery_is_paid_after_the_window(chain: Chain, published: Published) -> None:
    lic = await _bought(chain, published)
    garbage = delivery.Sealed(delivery.public_key(delivery.new_secret()), os.urandom(32))
    await chain.deliver_key(OWNER, lic, garbage)
    await chain.advance_time(chain.deployment.dispute_window + 1)
    with pytest.raises(errors.DisputeWindowClosed):
        await chain.dispute(BUYER, lic, SECRET, garbage)
    await chain.claim_payment(OWNER, lic)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    forged=st.one_of(st.integers(0, 2**256 - 1), st.sampled_from([0, delivery.N, SECRET + 1, delivery.N - SECRET])),
    tamper=st.sampled_from(["secret", "point", "cipher", "stranger"]),
)
async def test_forged_reveal_cannot_take_the_owners_money(
    chain: Chain, published: Published, forged: int, tamper: str
) -> None:
    snapshot = await chain.snapshot()
    try:
        lic = await _bought(chain, published)
        sealed = delivery.seal(published.key, BUYER_KEY, await chain.delivery_context(lic))
        await chain.deliver_key(OWNER, lic, sealed)
        secret, claimed, who = SECRET, sealed, BUYER
        if tamper == "secret":
            secret = forged
        elif tamper == "point":
            claimed = replace(sealed, point=delivery.public_key(1 + forged % (delivery.N - 1)))
        elif tamper == "cipher":
            claimed = replace(sealed, cipher=forged.to_bytes(32, "big"))
        else:
            who = STRANGER
        (rx, ry), cipher = (int.from_bytes(claimed.point[:32]), int.from_bytes(claimed.point[32:])), claimed.cipher
        with pytest.raises(errors.ContractRevert) as info:
            await chain.send(chain.licenses.functions.dispute(lic, secret, (rx, ry), cipher), who)
        assert info.value.error_name in {"InvalidReveal", "DeliveryMismatch", "DeliveryIsValid", "NotBuyer"}
        assert (await chain.get_license(lic)).status == LicenseStatus.DELIVERED
        assert await chain.balance_of(chain.deployment.license_manager) == PRICE
    finally:
        await chain.revert(snapshot)


# ------------------------------------------------------------------ item 6: the agreed offer ----


async def test_purchase_reverts_when_the_offer_changed_under_it(chain: Chain, published: Published) -> None:
    ds = published.dataset_id
    seen = await chain.get_dataset(ds)
    assert seen.terms_version == 1
    token = seen.payment_token
    revocable_second = replace(TRAINING_ALLOWED, license_duration=1, revocable=True)
    await chain.update_offer(OWNER, ds, price=PRICE, terms=revocable_second)  # same price, worse terms
    with pytest.raises(errors.TermsVersionMismatch) as info:
        await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, BUYER_KEY, terms_version=1, payment_token=token)
    assert (info.value.values["expected"], info.value.values["current"]) == (1, 2)
    other = await chain.tx.create("TestToken", DEPLOYER)
    await chain.update_offer(OWNER, ds, price=PRICE, terms=TRAINING_ALLOWED, payment_token=other)
    with pytest.raises(errors.PaymentTokenMismatch):
        await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, BUYER_KEY, terms_version=3, payment_token=token)
    assert await chain.balance_of(chain.deployment.license_manager) == 0
    with pytest.raises(errors.ERC20InsufficientBalance):  # the offer checks pass; the buyer holds none of it
        await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, BUYER_KEY, terms_version=3, payment_token=other)


async def test_free_dataset_is_delivered_and_claimable(chain: Chain, published: Published) -> None:
    ds = published.dataset_id
    await chain.update_offer(OWNER, ds, price=0, terms=TRAINING_ALLOWED)
    lic = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, BUYER_KEY, max_price=0)
    await chain.deliver_key(OWNER, lic, delivery.seal(published.key, BUYER_KEY, await chain.delivery_context(lic)))
    await chain.advance_time(chain.deployment.dispute_window + 1)
    await chain.claim_payment(OWNER, lic)
    assert (await chain.get_license(lic)).paid
