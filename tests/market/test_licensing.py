"""DatasetRegistry and LicenseManager on the embedded chain: happy paths and every refusal."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import pytest_asyncio

from contracts import delivery, errors
from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.models import LicenseStatus
from contracts.terms import TRAINING_ALLOWED, Permission, Purpose

from .conftest import AGENT, BUYER, OWNER, PRICE, STRANGER, Published, encode_sample, make_servable, register

LAB = delivery.new_secret()
LAB_PUB = delivery.public_key(LAB)


@pytest_asyncio.fixture
async def published(chain: Chain, published: Published) -> Published:
    """The conftest dataset, made servable (an accepted deal): purchases need one."""
    await make_servable(chain, published.dataset_id, published.manifest.n)
    return published


async def sealed_for(chain: Chain, lic: int, key: bytes) -> delivery.Sealed:
    return delivery.seal(key, LAB_PUB, await chain.delivery_context(lic))


async def paid(chain: Chain, lic: int) -> None:
    """Close the dispute window and let the owner take the escrow."""
    await chain.advance_time(chain.deployment.dispute_window + 1)
    await chain.claim_payment(STRANGER, lic)


async def test_register_and_read_back(chain: Chain, published: Published) -> None:
    d = await chain.get_dataset(published.dataset_id)
    man = published.manifest
    assert (d.owner, d.manifest_hash, d.commitment_root, d.key_commitment) == (
        OWNER.address,
        man.hash(),
        man.commitment_root,
        man.key_commitment,
    )
    assert (d.k, d.n, d.share_size, d.leaf_size, d.price, d.terms_version) == (2, 5, man.share_size, 1024, PRICE, 1)
    assert await chain.get_terms(published.dataset_id) == TRAINING_ALLOWED
    assert await chain.dataset_count() == 1


async def test_registration_refusals(chain: Chain, published: Published) -> None:
    with pytest.raises(errors.ManifestAlreadyRegistered) as info:
        await register(chain, published.manifest)  # the same registrant twice (others may: see test_registry_hardening)
    assert info.value.values["datasetId"] == published.dataset_id
    man, _, _ = encode_sample()
    with pytest.raises(errors.InvalidRegistration):
        await register(chain, replace(man, k=5))
    with pytest.raises(errors.InvalidRegistration, match="zero hash"):
        await chain.register_dataset(
            OWNER,
            manifest_hash=bytes(32),
            commitment_root=os.urandom(32),
            key_commitment=os.urandom(32),
            key_salt=os.urandom(32),
            plaintext_size=1,
            share_size=1,
            leaf_size=1024,
            k=1,
            n=2,
            price=0,
            terms=TRAINING_ALLOWED,
        )
    with pytest.raises(errors.UnknownDataset):
        await chain.get_dataset(99)


async def test_offer_updates_and_key_agent_are_owner_only(chain: Chain, published: Published) -> None:
    ds = published.dataset_id
    new_terms = replace(TRAINING_ALLOWED, ai_inference=Permission.NOT_ALLOWED)
    with pytest.raises(errors.NotDatasetOwner):
        await chain.update_offer(STRANGER, ds, price=1, terms=new_terms)
    with pytest.raises(errors.NotDatasetOwner):
        await chain.set_key_agent(STRANGER, ds, STRANGER.address)
    await chain.update_offer(OWNER, ds, price=7 * TOKEN, terms=new_terms)
    d = await chain.get_dataset(ds)
    assert (d.price, d.terms_version) == (7 * TOKEN, 2)
    assert await chain.get_terms(ds) == new_terms
    with pytest.raises(errors.PurposeNotAllowed):
        await chain.purchase(BUYER, ds, Purpose.AI_INFERENCE, LAB_PUB)
    with pytest.raises(errors.UnknownDataset):
        await chain.update_offer(OWNER, 42, price=1, terms=new_terms)


async def test_purchase_escrow_delivery_and_validity(chain: Chain, published: Published) -> None:
    ds = published.dataset_id
    owner_before, buyer_before = await chain.balance_of(OWNER.address), await chain.balance_of(BUYER.address)
    lic = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, LAB_PUB)
    assert await chain.balance_of(chain.deployment.license_manager) == PRICE
    record = await chain.get_license(lic)
    assert (record.status, record.buyer, record.price, record.buyer_key_hash) == (
        LicenseStatus.PENDING,
        BUYER.address,
        PRICE,
        delivery.key_hash(LAB_PUB),
    )
    assert await chain.buyer_key(lic) == LAB_PUB
    assert not await chain.is_license_valid(lic)
    sealed = await sealed_for(chain, lic, published.key)
    await chain.deliver_key(OWNER, lic, sealed)
    assert await chain.is_license_valid(lic)
    assert await chain.balance_of(OWNER.address) == owner_before  # held for the dispute window
    await paid(chain, lic)
    assert await chain.balance_of(OWNER.address) == owner_before + PRICE
    assert await chain.balance_of(BUYER.address) == buyer_before - PRICE
    assert await chain.balance_of(chain.deployment.license_manager) == 0
    got = await chain.delivery(lic)
    assert got is not None
    assert delivery.open_sealed(got, LAB, await chain.delivery_context(lic)) == published.key
    with pytest.raises(errors.NotPending):  # double delivery
        await chain.deliver_key(OWNER, lic, sealed)
    with pytest.raises(errors.NotPending):  # no refund after delivery
        await chain.refund(BUYER, lic)


async def test_purchase_refusals(chain: Chain, published: Published) -> None:
    ds = published.dataset_id
    with pytest.raises(errors.InvalidBuyerKey):
        await chain.send(chain.licenses.functions.purchase(ds, 0, (0, 0), PRICE, 1, chain.deployment.token), BUYER)
    with pytest.raises(errors.PriceAboveLimit):
        await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, LAB_PUB, max_price=PRICE - 1)
    with pytest.raises(errors.UnknownDataset):
        await chain.purchase(BUYER, 77, Purpose.AI_TRAINING, LAB_PUB)
    # no allowance: the token itself refuses, decoded as its own error
    d = await chain.get_dataset(ds)
    fn = chain.licenses.functions.purchase(ds, 0, delivery.check_point(LAB_PUB), PRICE, 1, d.payment_token)
    with pytest.raises(errors.ERC20InsufficientAllowance):
        await chain.send(fn, STRANGER)


async def test_delivery_access_control_and_agent(chain: Chain, published: Published) -> None:
    ds = published.dataset_id
    lic = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, LAB_PUB)
    sealed = await sealed_for(chain, lic, published.key)
    for intruder in (BUYER, STRANGER, AGENT):
        with pytest.raises(errors.NotKeyReleaser):
            await chain.deliver_key(intruder, lic, sealed)
    await chain.set_key_agent(OWNER, ds, AGENT.address)
    with pytest.raises(errors.InvalidDeliveryPoint):
        await chain.send(chain.licenses.functions.deliverKey(lic, (1, 1), sealed.cipher), AGENT)
    await chain.deliver_key(AGENT, lic, sealed)
    assert await chain.is_license_valid(lic)
    with pytest.raises(errors.UnknownLicense):
        await chain.deliver_key(OWNER, 999, sealed)


async def test_refund_only_after_deadline(chain: Chain, published: Published) -> None:
    lic = await chain.purchase(BUYER, published.dataset_id, Purpose.AI_TRAINING, LAB_PUB)
    before = await chain.balance_of(BUYER.address)
    with pytest.raises(errors.RefundNotYetAllowed):
        await chain.refund(BUYER, lic)
    await chain.advance_time(chain.deployment.delivery_window + 1)
    with pytest.raises(errors.DeliveryDeadlinePassed):
        await chain.deliver_key(OWNER, lic, await sealed_for(chain, lic, published.key))
    await chain.refund(STRANGER, lic)  # anyone may trigger it; the money goes to the buyer
    assert await chain.balance_of(BUYER.address) == before + PRICE
    assert (await chain.get_license(lic)).status == LicenseStatus.REFUNDED
    with pytest.raises(errors.NotPending):
        await chain.refund(BUYER, lic)


async def test_revocation(chain: Chain, published: Published) -> None:
    ds = published.dataset_id
    granted = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, LAB_PUB)
    await chain.deliver_key(OWNER, granted, await sealed_for(chain, granted, published.key))
    pending = await chain.purchase(BUYER, ds, Purpose.DATA_MINING, LAB_PUB)
    sealed = await sealed_for(chain, pending, published.key)
    with pytest.raises(errors.NotDatasetOwner):
        await chain.revoke_consent(STRANGER, ds)
    await chain.revoke_consent(OWNER, ds)
    assert await chain.consent_revoked_at(ds) > 0
    with pytest.raises(errors.AlreadyRevoked):
        await chain.revoke_consent(OWNER, ds)
    with pytest.raises(errors.ConsentIsRevoked):
        await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, LAB_PUB)
    with pytest.raises(errors.ConsentIsRevoked):  # no key release after revocation
        await chain.deliver_key(OWNER, pending, sealed)
    assert not await chain.is_license_valid(granted)  # revocable terms: the license ends
    await chain.refund(BUYER, pending)  # revoked before delivery: refund at once


async def test_irrevocable_license_survives_revocation_but_expires(chain: Chain) -> None:
    man, _, key = encode_sample()
    terms = replace(TRAINING_ALLOWED, revocable=False, license_duration=1000)
    ds = await register(chain, man, terms=terms)
    await make_servable(chain, ds, man.n)
    lic = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, LAB_PUB)
    await chain.deliver_key(OWNER, lic, await sealed_for(chain, lic, key))
    await chain.revoke_consent(OWNER, ds)
    assert await chain.is_license_valid(lic)
    record = await chain.get_license(lic)
    assert record.expires_at == record.delivered_at + 1000
    await chain.advance_time(1001)
    assert not await chain.is_license_valid(lic)


async def test_free_dataset_needs_no_token(chain: Chain) -> None:
    man, _, key = encode_sample()
    ds = await register(chain, man, price=0)
    await make_servable(chain, ds, man.n)
    lic = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, LAB_PUB)
    await chain.deliver_key(OWNER, lic, await sealed_for(chain, lic, key))
    assert await chain.is_license_valid(lic)
