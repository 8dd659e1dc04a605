"""Regression tests for the storage market's fault accounting (issue 11, items 1, 2 and 9)."""

from __future__ import annotations

import pytest

from market import errors
from market.chain import Chain
from market.deals import FaultReporter

from .conftest import OPERATORS, OWNER, STAKE, STRANGER, Published
from .test_storage_market import open_deal, proof_for


async def test_a_proven_epoch_cannot_be_reported_once_the_next_one_is_proven(
    chain: Chain, published: Published
) -> None:
    deal = await open_deal(chain, published)
    epoch = (await chain.get_deal(deal)).start_epoch
    await chain.advance_to_epoch(epoch)
    await chain.prove_storage(OPERATORS[0], await proof_for(chain, published, deal, 0, epoch))
    await chain.advance_to_epoch(epoch + 1)
    await chain.prove_storage(OPERATORS[0], await proof_for(chain, published, deal, 0, epoch + 1))
    assert await chain.is_proven(deal, 0, epoch)
    assert await chain.is_proven(deal, 0, epoch + 1)
    with pytest.raises(errors.AlreadyProven):
        await chain.report_missed_proof(STRANGER, deal, 0, epoch)
    assert (await chain.get_operator(OPERATORS[0].address)).stake == STAKE
    assert not (await chain.get_share(deal, 0)).faulty


async def test_a_gap_is_still_reportable_after_the_next_proof(chain: Chain, published: Published) -> None:
    """Proving E + 1 must not cover a missed E."""
    deal = await open_deal(chain, published)
    epoch = (await chain.get_deal(deal)).start_epoch
    await chain.advance_to_epoch(epoch + 1)
    await chain.prove_storage(OPERATORS[0], await proof_for(chain, published, deal, 0, epoch + 1))
    assert not await chain.is_proven(deal, 0, epoch)
    await chain.report_missed_proof(STRANGER, deal, 0, epoch)
    assert (await chain.get_share(deal, 0)).faulty


async def test_honest_providers_reported_every_epoch_are_never_slashed(chain: Chain, published: Published) -> None:
    """Every provider proves as soon as each epoch's seed is readable; the owner's reporter runs
    right after, every epoch, so it always sees the previous epoch *after* the current proof."""
    deal = await open_deal(chain, published)
    d = await chain.get_deal(deal)
    reporter = FaultReporter(chain, OWNER)
    for epoch in range(d.start_epoch, d.end_epoch):
        await chain.advance_to_epoch(epoch)
        proofs = [await proof_for(chain, published, deal, i, epoch) for i in range(d.n)]
        for i, proof in enumerate(proofs):
            await chain.prove_storage(OPERATORS[i], proof)
        assert await reporter.tick() == []
    await chain.advance_to_epoch(d.end_epoch)
    assert await reporter.tick() == []
    for op in OPERATORS[: d.n]:
        assert (await chain.get_operator(op.address)).stake == STAKE
    assert await chain.healthy_shares(deal) == d.n
    assert (await chain.get_share(deal, 0)).unclaimed == d.end_epoch - d.start_epoch
