"""Storage proofs cannot be replayed (issue 11, item 9; state bounded to 4 words: issue 15): a proof
puts its leaf in calldata, so within a round the contract never challenges a revealed leaf again,
and a proof copied from chain history never answers a later epoch, of the same deal or of another
deal over the same data (a renewal). See docs/replay.md."""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import replace

import pytest
from eth_abi import encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

import contracts
from contracts import errors
from contracts import proofs as packed
from contracts.chain import Chain
from contracts.models import StorageProof
from contracts.terms import TRAINING_ALLOWED
from erasure import merkle

from .conftest import DEPLOYER, OPERATORS, OWNER, PRICE, STAKE, Published, encode_sample, register
from .prover_proofs import proof_for

N = 5


async def publish(chain: Chain, leaves: int) -> Published:
    """A dataset whose shares have ``leaves`` leaves of 1 KiB (2-of-5, so 2 KiB of input per leaf)."""
    man, shares, key = encode_sample(size=leaves * 2048 - 1000, k=2, n=N)
    assert -(-man.share_size // man.leaf_size) == leaves
    dataset_id = await register(chain, man)
    return Published(dataset_id, man, shares, key, [merkle.MerkleTree(s, man.leaf_size) for s in shares])


async def open_deal(chain: Chain, pub: Published, epochs: int) -> int:
    for op in OPERATORS[:N]:
        with contextlib.suppress(errors.AlreadyRegistered):
            await chain.register_operator(op, STAKE)
    providers = [op.address for op in OPERATORS[:N]]
    deal = await chain.open_deal(OWNER, pub.dataset_id, providers, epochs=epochs, fee_per_share_epoch=0)
    await chain.accept_share(OPERATORS[0], deal, 0)
    return deal


async def prove(chain: Chain, pub: Published, deal: int, epoch: int) -> StorageProof:
    """Prove share 0 honestly in ``epoch``; returns the proof as read back from the chain's calldata."""
    proof = await proof_for(chain, pub, deal, 0, epoch)
    index = await chain.challenge_leaf(deal, 0, epoch)
    receipt = await chain.prove_storage(OPERATORS[0], proof)
    tx = await chain.w3.eth.get_transaction(receipt["transactionHash"])
    _, args = chain.storage_market.decode_function_input(tx["input"])
    return packed.decode(bytes(args["proofs"]), await chain.get_deal(deal), index)


async def raw_draw(chain: Chain, deal: int, share: int, epoch: int, leaf_count: int) -> int:
    """The index the seed draws before any revealed leaf is skipped: keccak(seed, deal, share) % leafCount."""
    seed = await chain.call(chain.storage_market.functions.epochSeed(epoch))
    digest = Web3.keccak(encode(["bytes32", "uint256", "uint16"], [seed, deal, share]))
    return int.from_bytes(digest, "big") % leaf_count


async def leaf_of(chain: Chain, pub: Published, proof: StorageProof) -> int:
    return pub.shares[0].index(proof.leaf) // pub.manifest.leaf_size


async def replay_when_redrawn(chain: Chain, deal: int, copied: StorageProof, leaf: int, first: int, last: int) -> int:
    """From epoch ``first`` on, wait for an epoch whose seed draws ``leaf`` again and answer it with
    the copied proof, as a node that deleted the share would; returns that epoch."""
    for epoch in range(first, last):
        await chain.advance_to_epoch(epoch)
        if await raw_draw(chain, deal, 0, epoch, 3) != leaf:
            continue
        with pytest.raises(errors.ProofRejected):
            await chain.prove_storage(OPERATORS[0], replace(copied, deal_id=deal, epoch=epoch))
        assert await chain.challenge_leaf(deal, 0, epoch) != leaf
        assert not await chain.is_proven(deal, 0, epoch)
        return epoch
    pytest.fail(f"no epoch in [{first}, {last}) drew leaf {leaf} again")  # (2/3)^40 odds


async def test_a_proof_copied_from_calldata_never_answers_a_later_epoch(chain: Chain) -> None:
    pub = await publish(chain, leaves=3)
    deal = await open_deal(chain, pub, epochs=48)
    start = (await chain.get_deal(deal)).start_epoch
    await chain.advance_to_epoch(start)
    copied = await prove(chain, pub, deal, start)
    leaf = await leaf_of(chain, pub, copied)
    # the node deletes the share: from here on it has only chain history
    await replay_when_redrawn(chain, deal, copied, leaf, start + 1, start + 48)
    assert await chain.call(chain.storage_market.functions.isRevealed(deal, 0, leaf))


async def test_a_renewal_never_redraws_a_leaf_revealed_under_the_old_deal(chain: Chain) -> None:
    pub = await publish(chain, leaves=3)
    old = await open_deal(chain, pub, epochs=2)
    start = (await chain.get_deal(old)).start_epoch
    await chain.advance_to_epoch(start)
    copied = await prove(chain, pub, old, start)
    leaf = await leaf_of(chain, pub, copied)
    renewal = await open_deal(chain, pub, epochs=48)
    first = (await chain.get_deal(renewal)).start_epoch
    await replay_when_redrawn(chain, renewal, copied, leaf, first, first + 48)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(leaves=st.integers(1, 5), skipped=st.lists(st.booleans(), min_size=12, max_size=12))
async def test_no_leaf_is_challenged_twice_before_all_have_been(chain: Chain, leaves: int, skipped: list[bool]) -> None:
    """The node proves some epochs and misses others (nobody reports); the leaves it is challenged
    on in proven epochs are all different until every leaf of the share has been revealed."""
    snapshot = await chain.snapshot()
    try:
        pub = await publish(chain, leaves)
        epochs = 2 * leaves + 2
        deal = await open_deal(chain, pub, epochs=epochs)
        start = (await chain.get_deal(deal)).start_epoch
        revealed: list[int] = []
        for epoch in range(start, start + epochs):
            await chain.advance_to_epoch(epoch)
            left = start + epochs - epoch  # epochs left, this one included
            if skipped[epoch - start] and left > leaves - len(revealed):
                continue
            challenged = await chain.challenge_leaf(deal, 0, epoch)
            if len(revealed) < leaves:
                assert challenged not in revealed
            await prove(chain, pub, deal, epoch)
            revealed.append(challenged)
        assert sorted(revealed[:leaves]) == list(range(leaves))
    finally:
        await chain.revert(snapshot)


WORDS, PER_WORD = 4, 255  # RevealedLeaves.WORDS, .PER_WORD: 1,020 classes
FULL = 2**256 - 1


def expected_pick(words: dict[int, int], draw: int, leaf_count: int) -> tuple[int, bool]:
    """RevealedLeaves.pick, spelled out: leaf i is in class i mod C (C = min(leafCount, 1,020)),
    class c is bit c mod 255 of word c // 255. The draw moves to the next unmarked class of its word
    (wrapping in the word), else the first of the following words (wrapping), keeping its block
    (one block lower past the last leaf); with every class marked, the draw itself, fresh."""
    classes = min(leaf_count, WORDS * PER_WORD)
    count = -(-classes // PER_WORD)
    base, c = draw - draw % classes, draw % classes
    for step in range(count):
        w = (c // PER_WORD + step) % count
        free = [b for b in range(PER_WORD) if PER_WORD * w + b < classes and not words.get(w, 0) >> b & 1]
        if free:
            b = next((b for b in free if b >= c % PER_WORD), free[0]) if step == 0 else free[0]
            leaf = base + PER_WORD * w + b
            return (leaf if leaf < leaf_count else leaf - classes), False
    return draw, True


def marked(words: dict[int, int], leaf: int, leaf_count: int) -> bool:
    c = leaf % min(leaf_count, WORDS * PER_WORD)
    return bool(words.get(c // PER_WORD, 0) >> (c % PER_WORD) & 1)


@st.composite
def bitmaps(draw: st.DrawFn) -> tuple[int, dict[int, int], int]:
    leaf_count = draw(st.one_of(st.integers(1, 2 * WORDS * PER_WORD), st.integers(1, 1 << 40)))
    count = -(-min(leaf_count, WORDS * PER_WORD) // PER_WORD)
    word = st.one_of(st.just(FULL), st.just(0), st.integers(0, FULL), st.just(FULL ^ (1 << draw(st.integers(0, 254)))))
    words = {w: draw(word) for w in range(count)}
    return leaf_count, words, draw(st.integers(0, leaf_count - 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bitmaps())
async def test_pick_follows_its_rule_over_many_words(chain: Chain, case: tuple[int, dict[int, int], int]) -> None:
    leaf_count, words, drawn = case
    address = await chain.tx.create("RevealedLeavesHarness", DEPLOYER)
    harness = chain.w3.eth.contract(address=address, abi=contracts.load("RevealedLeavesHarness").abi)
    await chain.send(harness.functions.setWords(0, list(words), list(words.values())), DEPLOYER)
    got, fresh = await harness.functions.pick(0, drawn, leaf_count).call()
    assert (got, fresh) == expected_pick(words, drawn, leaf_count)
    assert 0 <= got < leaf_count
    # an unmarked class is always found, and then no leaf of it has been revealed this round
    classes = min(leaf_count, WORDS * PER_WORD)
    assert fresh == all(marked(words, c, leaf_count) for c in range(classes))
    if not fresh:
        assert not marked(words, got, leaf_count)


async def test_a_large_share_keeps_its_revealed_leaves_in_four_words(chain: Chain) -> None:
    """Gas (issue 15): a share of 2^20 leaves folds its revealed leaves into 4 words, so after its first
    proofs every proof rewrites a word already written (2.9k) instead of starting a fresh one (20k):
    at most 4 of its proofs pay a fresh word (its first one does), the others at least 15k less.
    The share is synthetic (every leaf the same 32 bytes), so one path proves any leaf."""
    depth, leaf = 20, os.urandom(32)
    node, path = merkle.leaf_hash(leaf), []
    for _ in range(depth):
        path.append(node)
        node = merkle.node_hash(node, node)
    roots = [node, hashlib.sha256(b"other share").digest()]
    share_proof = merkle.MerkleTree(b"".join(roots), 32).prove(0).siblings
    dataset = await chain.register_dataset(
        OWNER,
        manifest_hash=os.urandom(32),
        commitment_root=merkle.commitment_root(roots),
        key_commitment=os.urandom(32),
        key_salt=os.urandom(32),
        plaintext_size=1 << 20,
        share_size=32 << depth,
        leaf_size=32,
        k=1,
        n=2,
        price=PRICE,
        terms=TRAINING_ALLOWED,
    )
    for op in OPERATORS[:2]:
        with contextlib.suppress(errors.AlreadyRegistered):
            await chain.register_operator(op, STAKE)
    providers = [OPERATORS[0].address, OPERATORS[1].address]
    deal = await chain.open_deal(OWNER, dataset, providers, epochs=10, fee_per_share_epoch=0)
    await chain.accept_share(OPERATORS[0], deal, 0)
    start = (await chain.get_deal(deal)).start_epoch
    gas = []
    for epoch in range(start, start + 10):
        await chain.advance_to_epoch(epoch)
        proof = StorageProof(deal, 0, epoch, leaf, tuple(path), roots[0], share_proof)
        gas.append(int((await chain.prove_storage(OPERATORS[0], proof))["gasUsed"]))
    assert sum(g > gas[0] - 15_000 for g in gas) <= 4, gas
