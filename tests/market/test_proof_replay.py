"""Storage proofs cannot be replayed (issue 11, item 9): a proof puts its leaf in calldata, so the
contract never challenges a revealed leaf again while unrevealed leaves remain near the draw, and
a proof copied from chain history never answers a later epoch, of the same deal or of another
deal over the same data (a renewal)."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from eth_abi import encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

import contracts
from contracts import errors
from contracts.chain import Chain
from contracts.models import StorageProof
from erasure import merkle

from .conftest import DEPLOYER, OPERATORS, OWNER, STAKE, Published, encode_sample, register
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
    receipt = await chain.prove_storage(OPERATORS[0], proof)
    tx = await chain.w3.eth.get_transaction(receipt["transactionHash"])
    _, args = chain.storage_market.decode_function_input(tx["input"])
    p = args["p"]
    leaf_proof, share_proof = tuple(p["leafProof"]), tuple(p["shareProof"])
    return StorageProof(p["dealId"], p["shareIndex"], p["epoch"], p["leaf"], leaf_proof, p["shareRoot"], share_proof)


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


EXTRA_WORDS = 3  # RevealedLeaves.EXTRA_WORDS
FULL = 2**256 - 1


def expected_pick(words: dict[int, int], draw: int, leaf_count: int) -> int:
    """RevealedLeaves.pick, spelled out: the next unrevealed leaf of the drawn word (wrapping in the
    word), else the first of the next EXTRA_WORDS words (wrapping around the share), else the draw."""
    count = -(-leaf_count // 256)
    for step in range(min(count, EXTRA_WORDS + 1)):
        w = (draw // 256 + step) % count
        free = [b for b in range(256) if 256 * w + b < leaf_count and not words.get(w, 0) >> b & 1]
        if free:
            if step == 0:
                return 256 * w + next((b for b in free if b >= draw % 256), free[0])
            return 256 * w + free[0]
    return draw


@st.composite
def bitmaps(draw: st.DrawFn) -> tuple[int, dict[int, int], int]:
    leaf_count = draw(st.integers(1, 256 * (EXTRA_WORDS + 3)))
    count = -(-leaf_count // 256)
    word = st.one_of(st.just(FULL), st.just(0), st.integers(0, FULL), st.just(FULL ^ (1 << draw(st.integers(0, 255)))))
    words = {w: draw(word) for w in range(count)}
    return leaf_count, words, draw(st.integers(0, leaf_count - 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bitmaps())
async def test_pick_follows_its_rule_over_many_words(chain: Chain, case: tuple[int, dict[int, int], int]) -> None:
    leaf_count, words, drawn = case
    address = await chain.tx.create("RevealedLeavesHarness", DEPLOYER)
    harness = chain.w3.eth.contract(address=address, abi=contracts.load("RevealedLeavesHarness").abi)
    await chain.send(harness.functions.setWords(0, list(words), list(words.values())), DEPLOYER)
    got = await harness.functions.pick(0, drawn, leaf_count).call()
    assert got == expected_pick(words, drawn, leaf_count)
    assert 0 <= got < leaf_count
    span = {(drawn // 256 + i) % len(words) for i in range(min(len(words), EXTRA_WORDS + 1))}
    if any(256 * w + b < leaf_count and not words[w] >> b & 1 for w in span for b in range(256)):
        assert not words[got // 256] >> (got % 256) & 1  # an unrevealed leaf near the draw is always found
