"""Regression tests for the storage market's fault accounting (issue 11, items 1, 2 and 9)."""

from __future__ import annotations

import pytest

from contracts import errors
from contracts.chain import Chain
from market.reporter import FaultReporter

from .conftest import OPERATORS, OWNER, STAKE, STRANGER, Published, encode_sample, register
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


async def test_settlement_waits_for_the_last_report_window(chain: Chain, published: Published) -> None:
    """Two deals share operator 0. Deal A's last epoch goes unproven by it: the report and the
    settlement must not both count its share out (else its stake is freed while it serves B)."""
    deal_a = await open_deal(chain, published)
    man_b, _, _ = encode_sample()
    dataset_b = await register(chain, man_b)
    providers_b = [op.address for op in (OPERATORS[0], *OPERATORS[3:7])]
    deal_b = await chain.open_deal(OWNER, dataset_b, providers_b, epochs=20, fee_per_share_epoch=1)
    await chain.accept_share(OPERATORS[0], deal_b, 0)
    assert (await chain.get_operator(OPERATORS[0].address)).active_shares == 2

    end = (await chain.get_deal(deal_a)).end_epoch
    await chain.advance_to_epoch(end)  # operator 0 never proved deal A's last epoch
    with pytest.raises(errors.DealNotOver):  # the report window of epoch end - 1 is still open
        await chain.settle_deal(STRANGER, deal_a)
    await chain.report_missed_proof(STRANGER, deal_a, 0, end - 1)
    await chain.advance_to_epoch(end + 1)
    await chain.settle_deal(STRANGER, deal_a)
    op = await chain.get_operator(OPERATORS[0].address)
    assert op.active_shares == 1  # still serving deal B
    with pytest.raises(errors.StakeLocked):
        await chain.withdraw_stake(OPERATORS[0], op.stake)
    # deal B's accounting is intact: its shares can still be reported, replaced and settled
    now = await chain.current_epoch()  # operator 0 never proved deal B either
    await chain.report_missed_proof(STRANGER, deal_b, 0, now - 1)
    assert (await chain.get_operator(OPERATORS[0].address)).active_shares == 0


async def test_a_settled_deal_cannot_be_reported(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published)
    end = (await chain.get_deal(deal)).end_epoch
    await chain.advance_to_epoch(end + 1)
    await chain.settle_deal(STRANGER, deal)
    with pytest.raises((errors.StateError, errors.ProofRejected)):
        await chain.report_missed_proof(STRANGER, deal, 0, end)


async def test_an_owner_reporting_its_own_deal_earns_no_reporter_reward(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published)
    epoch = (await chain.get_deal(deal)).start_epoch
    await chain.advance_to_epoch(epoch + 1)
    slash = int(await chain.call(chain.storage_market.functions.slashAmount()))
    await chain.report_missed_proof(OWNER, deal, 0, epoch)
    assert await chain.storage_balance(OWNER.address) == slash - slash // 2  # the owner's half only
    assert int(await chain.call(chain.storage_market.functions.burned())) == slash // 2  # the reporter's half
    await chain.report_missed_proof(STRANGER, deal, 1, epoch)  # anyone else still earns it
    assert await chain.storage_balance(STRANGER.address) == slash // 2
