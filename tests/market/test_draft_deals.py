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
from contracts.registry import Registration
from contracts.terms import TRAINING_ALLOWED
from erasure.manifest import Manifest

from .conftest import DEPLOYER, OPERATORS, OWNER, PRICE, STAKE, STRANGER, Published, encode_sample, register
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


def registration_of(man: Manifest, **changes: object) -> Registration:
    fields = {
        "manifest_hash": man.hash(),
        "commitment_root": man.commitment_root,
        "key_commitment": man.key_commitment,
        "key_salt": man.salt,
        "plaintext_size": man.plaintext_size,
        "share_size": man.share_size,
        "leaf_size": man.leaf_size,
        "k": man.k,
        "n": man.n,
        "price": PRICE,
        **changes,
    }
    return Registration(**fields)  # type: ignore[arg-type]


async def test_register_and_commit_is_one_transaction_with_every_check_of_commit(
    chain: Chain, published: Published
) -> None:
    """The streaming publish's second (and last) transaction: the dataset is registered for its
    sender and the sender's draft committed to it; a refusal registers nothing."""
    deal = await draft(chain, published)
    man = encode_sample()[0]  # a fresh dataset of the same sizes
    count = await chain.dataset_count()
    with pytest.raises(errors.NotDealOwner):  # nobody commits (or registers into) someone else's draft
        await chain.register_and_commit(STRANGER, deal, registration_of(man), TRAINING_ALLOWED)
    other = encode_sample(size=50_000)[0]
    with pytest.raises(errors.SizeMismatch):  # the nodes hold exactly the drafted share size
        await chain.register_and_commit(OWNER, deal, registration_of(other), TRAINING_ALLOWED)
    changes = ({"k": man.k + 1}, {"n": man.n + 1}, {"leaf_size": man.leaf_size * 2}, {"share_size": man.share_size + 1})
    for bad in changes:
        with pytest.raises(errors.SizeMismatch):
            await chain.register_and_commit(OWNER, deal, registration_of(man, **bad), TRAINING_ALLOWED)
    with pytest.raises(errors.InvalidRegistration):  # the registry's own checks still hold
        await chain.register_and_commit(OWNER, deal, registration_of(man, key_commitment=bytes(32)), TRAINING_ALLOWED)
    assert await chain.dataset_count() == count
    assert not (await chain.get_deal(deal)).committed

    dataset_id = await chain.register_and_commit(OWNER, deal, registration_of(man), TRAINING_ALLOWED)
    ds = await chain.get_dataset(dataset_id)
    assert ds.owner == OWNER.address
    assert ds.manifest_hash == man.hash()
    assert await chain.dataset_by_manifest(OWNER.address, man.hash()) == dataset_id
    d = await chain.get_deal(deal)
    assert d.committed
    assert d.commitment_root == man.commitment_root
    assert d.dataset_id == dataset_id
    assert await chain.deals_of(dataset_id=dataset_id) == [deal]
    with pytest.raises(errors.AlreadyCommitted):  # the root never changes under a node's feet
        await chain.register_and_commit(OWNER, deal, registration_of(encode_sample()[0]), TRAINING_ALLOWED)


async def test_register_and_commit_refuses_a_settled_draft(chain: Chain, published: Published) -> None:
    deal = await draft(chain, published)
    await chain.terminate_deal(OWNER, deal)
    await chain.advance_to_epoch((await chain.get_deal(deal)).end_epoch + 1)
    await chain.settle_deal(STRANGER, deal)
    with pytest.raises(errors.DealOver):
        await chain.register_and_commit(OWNER, deal, registration_of(encode_sample()[0]), TRAINING_ALLOWED)


async def test_only_the_market_registers_for_someone_else(chain: Chain, published: Published) -> None:
    """registerFor names any owner, so only the market (inside that owner's own transaction) may
    call it, and the market is named once, by the deployer."""
    raw = registration_of(encode_sample()[0]).to_abi(chain.deployment.token)
    register_for = chain.registry.functions.registerFor(OWNER.address, raw, TRAINING_ALLOWED.to_abi())
    for caller in (STRANGER, OWNER):
        with pytest.raises(errors.NotMarket):
            await chain.send(register_for, caller)
    with pytest.raises(errors.NotMarket):
        await chain.send(chain.registry.functions.setMarket(STRANGER.address), STRANGER)
    with pytest.raises(errors.MarketAlreadySet):
        await chain.send(chain.registry.functions.setMarket(STRANGER.address), DEPLOYER)
    assert await chain.call(chain.registry.functions.market()) == chain.deployment.storage_market
