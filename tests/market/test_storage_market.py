"""StorageMarket on the embedded chain: stakes, deals, proofs (built by the node's prover from a real
share store, as in production), faults, repair."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contracts import errors
from contracts.chain import Chain
from contracts.connection import TOKEN

from .conftest import OPERATORS, OWNER, STAKE, STRANGER, Published
from .prover_proofs import proof_for

FEE = TOKEN // 10
EPOCHS = 5


async def open_deal(chain: Chain, pub: Published, *, accept: bool = True) -> int:
    for op in OPERATORS:
        await chain.register_operator(op, STAKE)
    providers = [op.address for op in OPERATORS[: pub.manifest.n]]
    deal = await chain.open_deal(OWNER, pub.dataset_id, providers, epochs=EPOCHS, fee_per_share_epoch=FEE)
    if accept:
        for i in range(pub.manifest.n):
            await chain.accept_share(OPERATORS[i], deal, i)
    return deal


async def test_operator_stake_rules(chain: Chain) -> None:
    op = OPERATORS[0]
    with pytest.raises(errors.StakeTooLow):
        await chain.register_operator(op, STAKE - 1)
    await chain.register_operator(op, STAKE)
    with pytest.raises(errors.AlreadyRegistered):
        await chain.register_operator(op, STAKE)
    await chain.add_stake(op, 5 * TOKEN)
    await chain.withdraw_stake(op, 5 * TOKEN)
    assert (await chain.get_operator(op.address)).stake == STAKE
    with pytest.raises(errors.NotRegistered):
        await chain.withdraw_stake(STRANGER, 1)


async def test_open_deal_refusals(chain: Chain, published: Published) -> None:
    for op in OPERATORS:
        await chain.register_operator(op, STAKE)
    five = [op.address for op in OPERATORS[:5]]
    with pytest.raises(errors.NotDatasetOwner):
        await chain.open_deal(STRANGER, published.dataset_id, five, epochs=3, fee_per_share_epoch=FEE)
    with pytest.raises(errors.WrongProviderCount):
        await chain.open_deal(OWNER, published.dataset_id, five[:4], epochs=3, fee_per_share_epoch=FEE)
    with pytest.raises(errors.DuplicateProvider):
        await chain.open_deal(OWNER, published.dataset_id, [*five[:4], five[0]], epochs=3, fee_per_share_epoch=FEE)
    with pytest.raises(errors.NotRegistered):
        await chain.open_deal(
            OWNER, published.dataset_id, [*five[:4], STRANGER.address], epochs=3, fee_per_share_epoch=FEE
        )


async def test_deal_record(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published, accept=False)
    opened_in = await chain.current_epoch()  # openDeal was the last transaction
    d = await chain.get_deal(deal)
    man = published.manifest
    assert (d.dataset_id, d.owner, d.commitment_root, d.n) == (
        published.dataset_id,
        OWNER.address,
        man.commitment_root,
        man.n,
    )
    assert d.leaf_count == -(-man.share_size // man.leaf_size)
    assert d.last_leaf_size == man.share_size - (d.leaf_count - 1) * man.leaf_size
    assert d.start_epoch == opened_in + 1
    assert d.end_epoch == d.start_epoch + EPOCHS
    assert (d.escrow, d.paid, d.settled) == (man.n * EPOCHS * FEE, 0, False)
    share = await chain.get_share(deal, 3)
    assert (share.provider, share.accepted, share.faulty) == (OPERATORS[3].address, False, False)


async def test_nothing_is_due_before_acceptance(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published, accept=False)
    d = await chain.get_deal(deal)
    await chain.advance_to_epoch(d.start_epoch + 1)
    with pytest.raises(errors.NotDue):
        await chain.report_missed_proof(STRANGER, deal, 0, d.start_epoch)


async def test_accept_is_provider_only_and_locks_stake(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published, accept=False)
    with pytest.raises(errors.NotProvider):
        await chain.accept_share(OPERATORS[1], deal, 0)
    await chain.accept_share(OPERATORS[0], deal, 0)
    with pytest.raises(errors.AlreadyAccepted):
        await chain.accept_share(OPERATORS[0], deal, 0)
    with pytest.raises(errors.InvalidShare):
        await chain.accept_share(OPERATORS[0], deal, 9)
    with pytest.raises(errors.StakeLocked):
        await chain.withdraw_stake(OPERATORS[0], STAKE)


async def test_proofs_pay_and_are_checked(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published)
    d = await chain.get_deal(deal)
    # before the deal starts nothing is due
    epoch = await chain.current_epoch()
    assert epoch < d.start_epoch
    await chain.advance_to_epoch(d.start_epoch, offset=0)
    with pytest.raises(errors.SeedNotYetAvailable):  # the seed block itself cannot read its hash
        await chain.challenge_leaf(deal, 0, d.start_epoch)
    await chain.mine(1)
    epoch = d.start_epoch
    proof = await proof_for(chain, published, deal, 0, epoch)
    with pytest.raises(errors.NotProvider):
        await chain.prove_storage(OPERATORS[1], proof)
    bad_leaf = bytearray(proof.leaf)
    bad_leaf[0] ^= 1
    with pytest.raises(errors.InvalidProof):
        await chain.prove_storage(OPERATORS[0], replace(proof, leaf=bytes(bad_leaf)))
    with pytest.raises(errors.ProofRejected):  # a leaf one byte long: the path is read one byte off
        await chain.prove_storage(OPERATORS[0], replace(proof, leaf=proof.leaf + b"x"))
    with pytest.raises(errors.InvalidProof):  # a wrong path
        await chain.prove_storage(OPERATORS[0], replace(proof, leaf_proof=proof.leaf_proof[::-1]))
    with pytest.raises(errors.ProofRejected):  # share 0's proof offered for share 1 (wrong leaf, or wrong length)
        await chain.prove_storage(OPERATORS[1], replace(proof, share_index=1))
    with pytest.raises(errors.WrongEpoch):
        await chain.prove_storage(OPERATORS[0], replace(proof, epoch=epoch + 1))
    await chain.prove_storage(OPERATORS[0], proof)
    assert await chain.is_proven(deal, 0, epoch)
    assert (await chain.get_share(deal, 0)).unclaimed == 1
    await chain.claim_fees(STRANGER, deal, 0)  # anyone may move the fees; they go to the provider
    assert await chain.storage_balance(OPERATORS[0].address) == FEE
    assert (await chain.get_deal(deal)).paid == FEE
    with pytest.raises(errors.AlreadyProven):
        await chain.prove_storage(OPERATORS[0], proof)
    # replayed in a later epoch: with the stale epoch field it is refused outright; with the epoch
    # updated, the challenged leaf has moved (a revealed leaf is never drawn again while others
    # remain: tests/market/test_proof_replay.py), so the old leaf and path no longer verify
    old_leaf = published.shares[0].index(proof.leaf) // published.manifest.leaf_size
    later = epoch + 1
    await chain.advance_to_epoch(later)
    with pytest.raises(errors.WrongEpoch):
        await chain.prove_storage(OPERATORS[0], proof)
    while await chain.challenge_leaf(deal, 0, later) == old_leaf:  # same leaf by chance: try the next epoch
        later += 1
        await chain.advance_to_epoch(later)
    with pytest.raises((errors.InvalidProof, errors.MalformedProofs)):
        await chain.prove_storage(OPERATORS[0], replace(proof, epoch=later))


async def test_a_proof_for_another_deal_is_rejected(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published)
    d = await chain.get_deal(deal)
    await chain.advance_to_epoch(d.start_epoch)
    proof = await proof_for(chain, published, deal, 2, d.start_epoch)
    with pytest.raises(errors.UnknownDeal):
        await chain.prove_storage(OPERATORS[2], replace(proof, deal_id=deal + 1))


async def test_batch_of_proofs(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published)
    d = await chain.get_deal(deal)
    await chain.advance_to_epoch(d.start_epoch)
    proof = await proof_for(chain, published, deal, 3, d.start_epoch)
    await chain.prove_storage_batch(OPERATORS[3], [proof])
    assert await chain.is_proven(deal, 3, d.start_epoch)
    with pytest.raises(errors.AlreadyProven):  # all or nothing
        await chain.prove_storage_batch(OPERATORS[3], [proof, proof])


async def test_missed_proof_slashing_and_repair(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published)
    d = await chain.get_deal(deal)
    epoch = d.start_epoch
    await chain.advance_to_epoch(epoch)
    for share in (0, 1, 2, 3):  # share 4's provider stays silent
        await chain.prove_storage(OPERATORS[share], await proof_for(chain, published, deal, share, epoch))
    with pytest.raises(errors.DeadlineNotPassed):
        await chain.report_missed_proof(STRANGER, deal, 4, epoch)
    await chain.advance_to_epoch(epoch + 1)
    with pytest.raises(errors.AlreadyProven):  # an honest node is never slashed
        await chain.report_missed_proof(STRANGER, deal, 0, epoch)
    with pytest.raises(errors.ReportWindowClosed):  # only the epoch just ended can be reported
        await chain.report_missed_proof(STRANGER, deal, 4, epoch - 1)
    await chain.report_missed_proof(STRANGER, deal, 4, epoch)
    slash = 10 * TOKEN
    assert (await chain.get_operator(OPERATORS[4].address)).stake == STAKE - slash
    assert await chain.storage_balance(STRANGER.address) == slash // 2
    assert (await chain.get_share(deal, 4)).faulty
    with pytest.raises(errors.NotDue):  # one fault, one slash
        await chain.report_missed_proof(STRANGER, deal, 4, epoch)
    # repair: the owner moves share 4 to a spare operator, which proves the same bytes
    with pytest.raises(errors.NotDealOwner):
        await chain.replace_provider(STRANGER, deal, 4, OPERATORS[5].address)
    with pytest.raises(errors.ShareNotReplaceable):
        await chain.replace_provider(OWNER, deal, 0, OPERATORS[5].address)
    with pytest.raises(errors.DuplicateProvider):
        await chain.replace_provider(OWNER, deal, 4, OPERATORS[0].address)
    await chain.replace_provider(OWNER, deal, 4, OPERATORS[5].address)
    await chain.accept_share(OPERATORS[5], deal, 4)
    share = await chain.get_share(deal, 4)
    await chain.advance_to_epoch(share.active_from)
    await chain.prove_storage(OPERATORS[5], await proof_for(chain, published, deal, 4, share.active_from))


async def test_termination_settlement_and_withdrawal(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published)
    d = await chain.get_deal(deal)
    await chain.advance_to_epoch(d.start_epoch)
    await chain.prove_storage(OPERATORS[0], await proof_for(chain, published, deal, 0, d.start_epoch))
    with pytest.raises(errors.NotDealOwner):
        await chain.terminate_deal(STRANGER, deal)
    await chain.terminate_deal(OWNER, deal)
    d = await chain.get_deal(deal)
    assert d.end_epoch == d.start_epoch  # nothing is owed from the epoch of termination on
    assert not await chain.is_due(deal, 1, d.start_epoch)
    with pytest.raises(errors.DealNotOver):
        await chain.settle_deal(STRANGER, deal)
    await chain.advance_to_epoch(d.end_epoch)
    with pytest.raises(errors.DealNotOver):  # the last epoch can still be reported
        await chain.settle_deal(STRANGER, deal)
    await chain.advance_to_epoch(d.end_epoch + 1)
    owner_before = await chain.balance_of(OWNER.address)
    await chain.settle_deal(STRANGER, deal)
    with pytest.raises(errors.AlreadySettled):
        await chain.settle_deal(STRANGER, deal)
    refund = d.escrow - FEE
    assert await chain.storage_balance(OWNER.address) == refund
    await chain.withdraw(OWNER)
    assert await chain.balance_of(OWNER.address) == owner_before + refund
    with pytest.raises(errors.NothingToWithdraw):
        await chain.withdraw(OWNER)
    await chain.withdraw(OPERATORS[0])
    assert (await chain.get_operator(OPERATORS[0].address)).active_shares == 0
    with pytest.raises(errors.ExitNotReady):  # unstaking is leaving: leave first, then wait
        await chain.withdraw_stake(OPERATORS[0], STAKE)
    exit_epoch = await chain.leave(OPERATORS[0])
    await chain.advance_to_epoch(exit_epoch)
    await chain.withdraw_stake(OPERATORS[0], STAKE)  # stake is free once the deal is settled


async def test_a_proof_duty_is_what_the_separate_reads_say(chain: Chain, published: Published) -> None:
    """``proofDuty`` (the prover's one read per share and epoch) and ``Share.due``/``proven`` (the
    reporter's, from ``getShares``) against isDue, isProven, getShare and challengeLeaf: before
    acceptance, owed, proven, and on a faulty share."""
    deal = await open_deal(chain, published, accept=False)
    d = await chain.get_deal(deal)
    await chain.accept_share(OPERATORS[0], deal, 0)
    await chain.accept_share(OPERATORS[1], deal, 1)
    await chain.advance_to_epoch(d.start_epoch)
    epoch = d.start_epoch

    async def agrees(i: int) -> bool:
        duty = await chain.proof_duty(deal, i, epoch)
        assert duty.provider == (await chain.get_share(deal, i)).provider
        owed = await chain.is_due(deal, i, epoch) and not await chain.is_proven(deal, i, epoch)
        assert duty.owed == owed
        share, end = (await chain.get_shares(deal))[i], (await chain.get_deal(deal)).end_epoch
        assert share.due(epoch, end) == await chain.is_due(deal, i, epoch)  # the reporter's reading of one read
        assert share.proven(epoch) == await chain.is_proven(deal, i, epoch)
        assert duty.leaf == (await chain.challenge_leaf(deal, i, epoch) if owed else 0)
        return duty.owed

    assert not await agrees(2)  # not accepted: nothing owed
    assert await agrees(0)
    await chain.prove_storage(OPERATORS[0], await proof_for(chain, published, deal, 0, epoch))
    assert not await agrees(0)  # proven
    assert await agrees(1)
    await chain.advance_to_epoch(epoch + 1)
    await chain.report_missed_proof(STRANGER, deal, 1, epoch)
    epoch += 1
    assert not await agrees(1)  # faulty
    assert await agrees(0)
