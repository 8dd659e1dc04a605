"""DatasetRegistry hardening (issue 11, item 9): a copied registration squats nothing, ownership
moves in two steps and drops the old key agent, and license durations are bounded at offer time."""

from __future__ import annotations

from dataclasses import replace

import pytest
import pytest_asyncio

from contracts import delivery, errors
from contracts.chain import Chain
from contracts.terms import TRAINING_ALLOWED, Purpose

from .conftest import AGENT, BUYER, OWNER, STRANGER, Published, encode_sample, make_servable, register

SECRET = delivery.new_secret()
BUYER_KEY = delivery.public_key(SECRET)
MAX_DURATION = 100 * 365 * 24 * 3600


@pytest_asyncio.fixture
async def published(chain: Chain, published: Published) -> Published:
    """The conftest dataset, made servable (an accepted deal): purchases need one."""
    await make_servable(chain, published.dataset_id, published.manifest.n)
    return published


async def test_a_copied_pending_registration_squats_nothing(chain: Chain) -> None:
    man, _, _ = encode_sample()
    squatter = await register(chain, man, owner=STRANGER)  # front-runs with the owner's calldata
    mine = await register(chain, man)  # the owner's own registration still goes through
    assert mine != squatter
    assert (await chain.get_dataset(mine)).owner == OWNER.address
    assert await chain.dataset_by_manifest(OWNER.address, man.hash()) == mine
    assert await chain.dataset_by_manifest(STRANGER.address, man.hash()) == squatter
    with pytest.raises(errors.ManifestAlreadyRegistered):  # one registrant still cannot list it twice
        await register(chain, man)


async def test_ownership_transfer_is_two_step_and_drops_the_key_agent(chain: Chain, published: Published) -> None:
    ds = published.dataset_id
    await chain.set_key_agent(OWNER, ds, AGENT.address)
    await chain.transfer_dataset_ownership(OWNER, ds, STRANGER.address)
    assert (await chain.get_dataset(ds)).owner == OWNER.address  # nothing moves before acceptance
    assert await chain.pending_dataset_owner(ds) == STRANGER.address
    with pytest.raises(errors.NotPendingOwner):
        await chain.accept_dataset_ownership(BUYER, ds)
    await chain.accept_dataset_ownership(STRANGER, ds)
    d = await chain.get_dataset(ds)
    assert (d.owner, int(d.key_agent, 16)) == (STRANGER.address, 0)
    assert int(await chain.pending_dataset_owner(ds), 16) == 0
    lic = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, BUYER_KEY)
    sealed = delivery.seal(published.key, BUYER_KEY, await chain.delivery_context(lic))
    for old in (OWNER, AGENT):  # the old owner's agent can no longer release keys
        with pytest.raises(errors.NotKeyReleaser):
            await chain.deliver_key(old, lic, sealed)
    await chain.deliver_key(STRANGER, lic, sealed)
    with pytest.raises(errors.NotDatasetOwner):
        await chain.transfer_dataset_ownership(OWNER, ds, OWNER.address)


async def test_license_duration_is_bounded_at_offer_time(chain: Chain, published: Published) -> None:
    forever = replace(TRAINING_ALLOWED, license_duration=2**64 - 1)
    man, _, _ = encode_sample()
    with pytest.raises(errors.LicenseDurationTooLong):
        await register(chain, man, terms=forever)
    with pytest.raises(errors.LicenseDurationTooLong):
        await chain.update_offer(OWNER, published.dataset_id, price=1, terms=forever)
    longest = replace(TRAINING_ALLOWED, license_duration=MAX_DURATION)
    await chain.update_offer(OWNER, published.dataset_id, price=0, terms=longest)
    lic = await chain.purchase(BUYER, published.dataset_id, Purpose.AI_TRAINING, BUYER_KEY)
    await chain.deliver_key(
        OWNER, lic, delivery.seal(published.key, BUYER_KEY, await chain.delivery_context(lic))
    )  # delivery can no longer overflow
    record = await chain.get_license(lic)
    assert record.expires_at == record.delivered_at + MAX_DURATION
