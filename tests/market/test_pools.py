"""DataPools: pro-rata split, consent per contribution, key release per contribution, hostile parties."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio

import contracts
from contracts import delivery, errors
from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.pool_models import SCALE, ContributionStatus, open_with, seal_to
from contracts.terms import TRAINING_ALLOWED, Permission, Purpose

from .conftest import BUYER, DEPLOYER, STRANGER, encode_sample, make_servable, register
from .pool_support import (
    CURATOR,
    FEE_BPS,
    LAB_KEY,
    LAB_SECRET,
    POOL_PRICE,
    RELEASE_SECRET,
    Contributed,
    open_pool,
    scaled_holdings,
    three_datasets,
)


@pytest_asyncio.fixture(scope="module")
async def registered(base_chain: Chain) -> AsyncIterator[list[Contributed]]:
    """The three datasets, registered and made servable once per chain for this file (~3 s of
    transactions that each test repeated); each test's ``chain`` reverts what it did on top of them."""
    before = await base_chain.snapshot()
    made = await three_datasets(base_chain)
    yield made
    await base_chain.revert(before)


@pytest_asyncio.fixture
async def datasets(registered: list[Contributed], chain: Chain) -> list[Contributed]:
    return registered


async def _pool_with_three(chain: Chain, datasets: list[Contributed], **kw: object) -> tuple[int, list[int]]:
    pool = await open_pool(chain, **kw)  # type: ignore[arg-type]
    ids = [await chain.contribute(d.contributor, pool, d.dataset_id, d.key) for d in datasets]
    for weight, cid in zip((1, 2, 0), ids, strict=True):  # the third by its default weight: its size
        await chain.accept_contribution(CURATOR, cid, weight)
    return pool, ids


async def _release(chain: Chain, license_id: int, contribution_id: int) -> delivery.Sealed:
    """What the pool's key release does for one contribution of one license."""
    key = await chain.open_contribution_seal(contribution_id, RELEASE_SECRET)
    buyer = await chain.pool_buyer_key(license_id)
    sealed = seal_to(key, buyer, chain.delivery_pad(license_id, contribution_id))
    await chain.deliver_pool_key(CURATOR, license_id, contribution_id, sealed)
    return sealed


async def test_a_sale_is_split_by_weight_and_every_unit_is_accounted(chain: Chain, datasets: list[Contributed]) -> None:
    pool, ids = await _pool_with_three(chain, datasets)
    third = datasets[2].size
    assert (await chain.get_contribution(ids[2])).weight == third
    await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY)
    fee = POOL_PRICE * FEE_BPS // 10_000
    rest = POOL_PRICE - fee
    total = 1 + 2 + third
    for cid, w in zip(ids, (1, 2, third), strict=True):
        assert abs(await chain.earned(cid) - rest * w // total) <= 1
    assert await scaled_holdings(chain, [pool], ids) == POOL_PRICE * SCALE  # to the last scaled unit
    before = [await chain.balance_of(d.contributor.address) for d in datasets]
    paid = [await chain.claim_contribution(STRANGER, cid) for cid in ids]  # anyone may call; money goes home
    after = [await chain.balance_of(d.contributor.address) for d in datasets]
    assert [a - b for a, b in zip(after, before, strict=True)] == paid
    assert await chain.claim_curator(STRANGER, pool) == fee
    dust = await chain.balance_of(chain.deployment.data_pools)
    assert dust == POOL_PRICE - fee - sum(paid)
    assert dust <= len(ids)  # sub-unit credits, still owed
    assert await scaled_holdings(chain, [pool], ids) == dust * SCALE


async def test_a_rejected_contribution_earns_nothing_and_is_never_released(
    chain: Chain, datasets: list[Contributed]
) -> None:
    pool = await open_pool(chain)
    good = await chain.contribute(datasets[0].contributor, pool, datasets[0].dataset_id, datasets[0].key)
    junk = await chain.contribute(datasets[1].contributor, pool, datasets[1].dataset_id, datasets[1].key)
    await chain.accept_contribution(CURATOR, good)
    await chain.reject_contribution(CURATOR, junk)
    lic = await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY)
    assert await chain.earned(junk) == 0
    assert await chain.claim_contribution(datasets[1].contributor, junk) == 0
    assert not await chain.covers(lic, junk)
    with pytest.raises(errors.ContributionNotInLicense):
        await _release(chain, lic, junk)
    with pytest.raises(errors.WrongContributionStatus):
        await chain.accept_contribution(CURATOR, junk)


async def test_a_contributor_cannot_weigh_or_accept_itself(chain: Chain, datasets: list[Contributed]) -> None:
    pool = await open_pool(chain)
    d = datasets[0]
    cid = await chain.contribute(d.contributor, pool, d.dataset_id, d.key)
    with pytest.raises(errors.NotCurator):
        await chain.accept_contribution(d.contributor, cid, 10**12)
    # a curator contributing to its own pool cannot accept itself either
    man_owner = CURATOR
    man, _, key = encode_sample(size=3000)
    own = await register(chain, man, owner=man_owner)
    await make_servable(chain, own, man.n, owner=man_owner)
    mine = await chain.contribute(man_owner, pool, own, key)
    with pytest.raises(errors.SelfAcceptance):
        await chain.accept_contribution(CURATOR, mine, 10**12)
    # nor can anyone contribute a dataset it does not own
    with pytest.raises(errors.NotDatasetOwner):
        await chain.contribute(STRANGER, pool, datasets[2].dataset_id, datasets[2].key)


async def test_withdrawal_ends_consent_for_later_licenses_and_revocable_earlier_ones(
    chain: Chain, datasets: list[Contributed]
) -> None:
    pool, ids = await _pool_with_three(chain, datasets)
    first = await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY)
    await chain.withdraw_contribution(datasets[1].contributor, ids[1])
    earned_before = await chain.earned(ids[1])
    second = await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY)
    assert await chain.earned(ids[1]) == earned_before  # earns nothing from the later sale
    assert (await chain.get_pool_license(second)).members == 2
    with pytest.raises(errors.ContributionNotInLicense):
        await _release(chain, second, ids[1])
    with pytest.raises(errors.ContributionWithdrawnFromLicense):  # revocable terms: the earlier one too
        await _release(chain, first, ids[1])
    for cid in (ids[0], ids[2]):
        await _release(chain, second, cid)
    with pytest.raises(errors.AlreadyDelivered):
        await _release(chain, second, ids[0])
    with pytest.raises(errors.WrongContributionStatus):
        await chain.withdraw_contribution(datasets[1].contributor, ids[1])


async def test_non_revocable_terms_let_an_earlier_license_survive_withdrawal(
    chain: Chain, datasets: list[Contributed]
) -> None:
    pool, ids = await _pool_with_three(chain, datasets, terms=replace(TRAINING_ALLOWED, revocable=False))
    first = await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY)
    await chain.withdraw_contribution(datasets[0].contributor, ids[0])
    second = await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY)
    await _release(chain, first, ids[0])  # bought while it consented, under terms that survive
    with pytest.raises(errors.ContributionNotInLicense):
        await _release(chain, second, ids[0])


async def test_the_buyer_opens_each_contribution_key_and_can_prove_a_wrong_one(
    chain: Chain, datasets: list[Contributed]
) -> None:
    pool, ids = await _pool_with_three(chain, datasets)
    lic = await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY)
    sealed = await _release(chain, lic, ids[0])
    assert open_with(sealed, LAB_SECRET, chain.delivery_pad(lic, ids[0])) == datasets[0].key
    assert (await chain.pool_deliveries(lic))[ids[0]] == sealed
    with pytest.raises(errors.DeliveryIsValid):
        await chain.dispute_pool_delivery(BUYER, lic, ids[0], LAB_SECRET, sealed)
    wrong = seal_to(bytes(32), LAB_KEY, chain.delivery_pad(lic, ids[1]))
    await chain.deliver_pool_key(CURATOR, lic, ids[1], wrong)
    with pytest.raises(errors.NotPoolBuyer):
        await chain.dispute_pool_delivery(STRANGER, lic, ids[1], LAB_SECRET, wrong)
    with pytest.raises(errors.InvalidReveal):
        await chain.dispute_pool_delivery(BUYER, lic, ids[1], LAB_SECRET + 1, wrong)
    await chain.dispute_pool_delivery(BUYER, lic, ids[1], LAB_SECRET, wrong)
    assert await chain.pool_rejected_deliveries(CURATOR.address) == 1


async def test_hostile_parties_take_nothing(chain: Chain, datasets: list[Contributed]) -> None:
    no_inference = replace(TRAINING_ALLOWED, ai_inference=Permission.NOT_ALLOWED)
    pool, ids = await _pool_with_three(chain, datasets, terms=no_inference)
    lic = await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY)
    stranger_before = await chain.balance_of(STRANGER.address)
    with pytest.raises(errors.NotContributor):
        await chain.withdraw_contribution(BUYER, ids[0])
    with pytest.raises(errors.NotPoolKeyReleaser):
        await chain.deliver_pool_key(BUYER, lic, ids[0], seal_to(bytes(32), LAB_KEY, chain.delivery_pad(lic, ids[0])))
    with pytest.raises(errors.NotCurator):
        await chain.reject_contribution(BUYER, ids[0])
    with pytest.raises(errors.PriceAboveLimit):
        await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY, max_price=POOL_PRICE - 1)
    with pytest.raises(errors.PoolPurposeNotAllowed):
        await chain.purchase_pool(BUYER, pool, Purpose.AI_INFERENCE, LAB_KEY)
    # the stranger (itself a contributor) claims the curator's fee and others' earnings: they go to them
    await chain.claim_curator(STRANGER, pool)
    await chain.claim_contribution(STRANGER, ids[0])
    own = await chain.claim_contribution(STRANGER, ids[1])
    assert await chain.balance_of(STRANGER.address) == stranger_before + own
    assert await chain.claim_curator(STRANGER, pool) == 0  # nothing twice


async def test_an_empty_pool_cannot_be_bought(chain: Chain, datasets: list[Contributed]) -> None:
    pool = await open_pool(chain)
    cid = await chain.contribute(datasets[0].contributor, pool, datasets[0].dataset_id, datasets[0].key)
    with pytest.raises(errors.EmptyPool):  # pending contributions are not for sale
        await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY)
    assert (await chain.get_contribution(cid)).status == ContributionStatus.PENDING
    with pytest.raises(errors.InvalidPool):
        await open_pool(chain, fee_bps=10_001)


async def test_claims_cannot_be_reentered_through_the_payment_token(chain: Chain, datasets: list[Contributed]) -> None:
    bad = await chain.tx.create("ReentrantToken", DEPLOYER)
    token = chain.w3.eth.contract(address=bad, abi=contracts.load("ReentrantToken").abi)
    await chain.send(token.functions.mint(BUYER.address, 100 * TOKEN), DEPLOYER)
    pool, ids = await _pool_with_three(chain, datasets, payment_token=bad)
    await chain.purchase_pool(BUYER, pool, Purpose.AI_TRAINING, LAB_KEY)
    owed = await chain.earned(ids[2])
    payload = chain.pools.encode_abi("claim", args=[ids[2]])
    await chain.send(token.functions.arm(chain.deployment.data_pools, payload), STRANGER)
    assert await chain.claim_contribution(STRANGER, ids[2]) == owed
    assert await token.functions.reentered().call()
    assert not await token.functions.reentrySucceeded().call()
    assert await token.functions.balanceOf(datasets[2].contributor.address).call() == owed  # paid once
    payload = chain.pools.encode_abi("claimCurator", args=[pool])
    await chain.send(token.functions.arm(chain.deployment.data_pools, payload), STRANGER)
    fee = await chain.claim_curator(STRANGER, pool)
    assert not await token.functions.reentrySucceeded().call()
    assert await token.functions.balanceOf(CURATOR.address).call() == fee == POOL_PRICE * FEE_BPS // 10_000
