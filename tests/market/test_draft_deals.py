"""Draft deals (streaming publish): opened for sizes, providers and escrow before the root exists,
committed to a registered dataset later. Every money path against a hostile party: a node cannot
be paid for (or accept) an uncommitted share, nobody but the owner commits, a dataset of other
sizes or another owner cannot be bound, and the escrow of an abandoned draft all goes back."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contracts import errors
from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.models import PENDING_ROOT

from .conftest import OPERATORS, OWNER, STAKE, STRANGER, Published, encode_sample, register
from .prover_proofs import proof_for

FEE = TOKEN // 10
EPOCHS = 5


async def draft(chain: Chain, pub: Published, *, owner: object = OWNER, fee: int = FEE) -> int:
    for op in OPERATORS[: pub.manifest.n]:
        if not (await chain.get_operator(op.address)).registered:
            await chain.register_operator(op, STAKE)
    m = pub.manifest
    return await chain.open_draft_deal(
        owner,  # type: ignore[arg-type]
        share_size=m.share_size,
        leaf_size=m.leaf_size,
        k=m.k,
        providers=[op.address for op in OPERATORS[: m.n]],
        epochs=EPOCHS,
        fee_per_share_epoch=fee,
    )


async def test_a_draft_holds_escrow_and_no_share_can_be_accepted_or_proven(chain: Chain, published: Published) -> None:
    before = await chain.balance_of(OWNER.address)
    deal = await draft(chain, published)
    d = await chain.get_deal(deal)
    assert not d.committed
    assert d.commitment_root == PENDING_ROOT
    assert d.dataset_id == 0
    assert d.share_size == published.manifest.share_size
    assert d.n == published.manifest.n
    assert await chain.balance_of(OWNER.address) == before - d.escrow == before - 5 * EPOCHS * FEE
    with pytest.raises(errors.NotCommitted):  # the node cannot take on (so never be paid for) a pending share
        await chain.accept_share(OPERATORS[0], deal, 0)
    providers = [op.address for op in OPERATORS[:5]]
    real = await chain.open_deal(OWNER, published.dataset_id, providers, epochs=EPOCHS, fee_per_share_epoch=0)
    await chain.accept_share(OPERATORS[0], real, 0)
    await chain.advance_to_epoch(d.start_epoch)
    valid = await proof_for(chain, published, real, 0, d.start_epoch)  # a real proof of the same bytes
    with pytest.raises(errors.ContractRevert):  # proves nothing for the draft: nothing is due, no root
        await chain.prove_storage(OPERATORS[0], replace(valid, deal_id=deal))
    with pytest.raises(errors.ContractRevert):
        await chain.report_missed_proof(STRANGER, deal, 0, d.start_epoch)
    assert deal not in await chain.deals_of(dataset_id=published.dataset_id)


async def test_only_the_owner_commits_and_only_its_own_dataset_of_the_same_sizes(
    chain: Chain, published: Published
) -> None:
    deal = await draft(chain, published)
    with pytest.raises(errors.NotDealOwner):
        await chain.commit_deal(STRANGER, deal, published.dataset_id)
    theirs = await register(chain, encode_sample()[0], owner=STRANGER)
    with pytest.raises(errors.NotDatasetOwner):  # the owner cannot bind someone else's dataset either
        await chain.commit_deal(OWNER, deal, theirs)
    other_sizes = await register(chain, encode_sample(size=50_000)[0])
    with pytest.raises(errors.SizeMismatch):  # nodes hold exactly the drafted share size: no more
        await chain.commit_deal(OWNER, deal, other_sizes)
    await chain.commit_deal(OWNER, deal, published.dataset_id)
    with pytest.raises(errors.AlreadyCommitted):  # the root never changes under a node's feet
        await chain.commit_deal(OWNER, deal, published.dataset_id)
    d = await chain.get_deal(deal)
    assert d.committed
    assert d.commitment_root == published.manifest.commitment_root
    assert d.dataset_id == published.dataset_id
    assert await chain.deals_of(dataset_id=published.dataset_id) == [deal]


async def test_a_committed_draft_is_an_ordinary_deal(chain: Chain, published: Published) -> None:
    deal = await draft(chain, published)
    await chain.register_operator(OPERATORS[5], STAKE)
    await chain.replace_provider(OWNER, deal, 4, OPERATORS[5].address)  # before commit: a failed upload
    await chain.commit_deal(OWNER, deal, published.dataset_id)
    for i in range(published.manifest.n):
        await chain.accept_share(OPERATORS[5] if i == 4 else OPERATORS[i], deal, i)
    assert await chain.is_servable(published.dataset_id)
    d = await chain.get_deal(deal)
    await chain.advance_to_epoch(d.start_epoch)
    await chain.prove_storage(OPERATORS[0], await proof_for(chain, published, deal, 0, d.start_epoch))
    await chain.prove_storage(OPERATORS[5], await proof_for(chain, published, deal, 4, d.start_epoch))


async def test_an_abandoned_draft_refunds_its_whole_escrow(chain: Chain, published: Published) -> None:
    for op in OPERATORS[:5]:
        await chain.register_operator(op, STAKE)
    before = await chain.balance_of(OWNER.address)
    market_before = await chain.balance_of(chain.deployment.storage_market)  # the stakes
    deal = await draft(chain, published)
    with pytest.raises(errors.NotDealOwner):
        await chain.terminate_deal(STRANGER, deal)
    await chain.terminate_deal(OWNER, deal)
    d = await chain.get_deal(deal)
    await chain.advance_to_epoch(d.end_epoch + 1)
    await chain.settle_deal(STRANGER, deal)
    with pytest.raises(errors.DealOver):  # a settled draft cannot be committed (and then accepted)
        await chain.commit_deal(OWNER, deal, published.dataset_id)
    for op in OPERATORS[:5]:  # no provider earned anything
        assert await chain.storage_balance(op.address) == 0
    await chain.withdraw(OWNER)
    assert await chain.balance_of(OWNER.address) == before
    assert await chain.balance_of(chain.deployment.storage_market) == market_before


async def test_draft_refusals(chain: Chain, published: Published) -> None:
    m = published.manifest
    for op in OPERATORS[:5]:
        await chain.register_operator(op, STAKE)
    five = [op.address for op in OPERATORS[:5]]
    sizes = {"share_size": m.share_size, "leaf_size": m.leaf_size, "epochs": 3, "fee_per_share_epoch": FEE}
    with pytest.raises(errors.InvalidParameters):
        await chain.open_draft_deal(OWNER, k=5, providers=five, **sizes)  # k < n
    with pytest.raises(errors.InvalidParameters):
        await chain.open_draft_deal(OWNER, k=2, providers=five, **{**sizes, "share_size": 0})
    with pytest.raises(errors.DuplicateProvider):
        await chain.open_draft_deal(OWNER, k=2, providers=[*five[:4], five[0]], **sizes)
    with pytest.raises(errors.NotRegistered):
        await chain.open_draft_deal(OWNER, k=2, providers=[*five[:4], STRANGER.address], **sizes)
