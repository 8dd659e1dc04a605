"""The Merkle tree definition: reference recomputation, proofs, streaming builder, vectors."""

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure import merkle
from erasure.errors import IntegrityError, ParameterError
from tests.vectors.generate import seeded

VECTORS = Path(__file__).parent.parent / "vectors" / "merkle_v1.json"


def reference_root(data: bytes, leaf_size: int) -> bytes:
    """Straight from DESIGN.md, written independently of erasure.merkle."""
    leaves = [data[i : i + leaf_size] for i in range(0, len(data), leaf_size)] or [b""]
    level = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                nxt.append(hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest())
            else:
                nxt.append(level[i])
        level = nxt
    return level[0]


def sizes_around_powers_of_two():
    return st.one_of(
        st.integers(0, 40).map(lambda b: b),
        st.sampled_from([2**p + d for p in range(0, 8) for d in (-1, 0, 1)]).map(lambda x: max(0, x)),
    )


@given(leaves=sizes_around_powers_of_two(), short=st.integers(0, 15), leaf_size=st.sampled_from([1, 16, 32, 64]))
def test_root_matches_reference(leaves: int, short: int, leaf_size: int) -> None:
    data = bytes(range(256)) * ((leaves * leaf_size + short) // 256 + 1)
    data = data[: leaves * leaf_size + short % leaf_size]
    tree = merkle.MerkleTree(data, leaf_size)
    assert tree.root == reference_root(data, leaf_size)
    assert tree.leaf_count == max(1, -(-len(data) // leaf_size))


def test_empty_input_is_one_empty_leaf() -> None:
    tree = merkle.MerkleTree(b"", 1024)
    assert tree.leaf_count == 1
    assert tree.root == hashlib.sha256(b"\x00").digest()


@given(data=st.binary(max_size=600), leaf_size=st.sampled_from([1, 7, 32, 64]), pick=st.integers(0, 10**6))
def test_every_proof_verifies_and_tampering_fails(data: bytes, leaf_size: int, pick: int) -> None:
    tree = merkle.MerkleTree(data, leaf_size)
    i = pick % tree.leaf_count
    leaf = data[i * leaf_size : (i + 1) * leaf_size]
    proof = tree.prove(i)
    assert proof.index == i
    assert merkle.verify_proof(tree.root, leaf, proof)
    assert not merkle.verify_proof(tree.root, leaf + b"x", proof)
    if proof.siblings:
        bad = bytearray(proof.siblings[0])
        bad[0] ^= 1
        forged = merkle.MerkleProof(i, proof.leaf_count, (bytes(bad), *proof.siblings[1:]))
        assert not merkle.verify_proof(tree.root, leaf, forged)
    if tree.leaf_count > 1:
        other = (i + 1) % tree.leaf_count
        moved = merkle.MerkleProof(other, proof.leaf_count, proof.siblings)
        assert (
            not merkle.verify_proof(tree.root, leaf, moved) or data[other * leaf_size : (other + 1) * leaf_size] == leaf
        )


def test_malformed_proofs_are_rejected_not_crashing() -> None:
    tree = merkle.MerkleTree(bytes(100), 10)
    proof = tree.prove(3)
    assert not merkle.verify_proof(tree.root, bytes(10), merkle.MerkleProof(3, 10, proof.siblings[:-1]))
    assert not merkle.verify_proof(tree.root, bytes(10), merkle.MerkleProof(10, 10, proof.siblings))
    assert not merkle.verify_proof(tree.root, bytes(10), merkle.MerkleProof(-1, 10, proof.siblings))
    assert not merkle.verify_proof(tree.root, bytes(10), merkle.MerkleProof(3, 10, (b"short",) * 4))
    with pytest.raises(ParameterError):
        tree.prove(10)


@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(0, 3000), max_size=6),
    leaf_size=st.sampled_from([1, 32, 100, 1024]),
)
def test_builder_equals_tree_for_any_chunking(data: bytes, cuts: list[int], leaf_size: int) -> None:
    builder = merkle.MerkleBuilder(leaf_size)
    prev = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        builder.update(data[prev:cut])
        prev = cut
    builder.update(data[prev:])
    assert builder.root() == merkle.MerkleTree(data, leaf_size).root
    assert builder.leaf_count == merkle.MerkleTree(data, leaf_size).leaf_count


def test_builder_memory_is_logarithmic() -> None:
    acc = merkle.NodeAccumulator()
    for i in range(10_000):
        acc.add(i.to_bytes(32, "big"))
        assert len(acc._stack) <= 14
    assert acc.root() == merkle.root_of_nodes([i.to_bytes(32, "big") for i in range(10_000)])


@given(blocks=st.integers(1, 40), tail=st.integers(0, 255), leaves_per_block=st.sampled_from([1, 2, 4, 8]))
def test_block_roots_compose_to_share_root(blocks: int, tail: int, leaves_per_block: int) -> None:
    leaf_size = 16
    block_size = leaf_size * leaves_per_block
    data = bytes((i * 7) % 251 for i in range((blocks - 1) * block_size + 1 + tail % block_size))
    roots = merkle.block_roots(data, block_size, leaf_size)
    assert merkle.root_of_nodes(roots) == merkle.MerkleTree(data, leaf_size).root
    merkle.verify_block_roots(merkle.MerkleTree(data, leaf_size).root, roots)
    with pytest.raises(IntegrityError):
        merkle.verify_block_roots(merkle.MerkleTree(data, leaf_size).root, [*roots[::-1], roots[0]])


def test_block_layout_must_be_power_of_two_leaves() -> None:
    with pytest.raises(ParameterError):
        merkle.check_block_layout(3 * 1024, 1024)
    with pytest.raises(ParameterError):
        merkle.check_block_layout(1000, 1024)
    merkle.check_block_layout(256 * 1024, 1024)


def test_commitment_root_is_tree_over_share_roots_as_leaves() -> None:
    roots = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    assert merkle.commitment_root(roots) == reference_root(b"".join(roots), 32)
    with pytest.raises(ParameterError):
        merkle.commitment_root([b"short"])


def test_committed_vectors() -> None:
    vectors = json.loads(VECTORS.read_text())
    assert vectors["version"] == 1
    for case in vectors["cases"]:
        data = bytes.fromhex(case["data_hex"]) if "data_hex" in case else seeded(case["seed"], case["size"])
        tree = merkle.MerkleTree(data, case["leaf_size"])
        assert tree.root.hex() == case["root"], case["name"]
        assert tree.leaf_count == case["leaf_count"]
        for p in case["proofs"]:
            proof = merkle.MerkleProof.from_json(p)
            assert tree.prove(proof.index) == proof
            leaf = bytes.fromhex(p["leaf_hex"])
            assert merkle.verify_proof(tree.root, leaf, proof)
    c = vectors["commitment"]
    assert merkle.commitment_root([bytes.fromhex(r) for r in c["share_roots"]]).hex() == c["root"]
