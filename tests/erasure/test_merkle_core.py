"""Conformance of every Merkle engine: each C kernel the CPU has, and the pure-Python reference."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import merkle

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "merkle_v1.json").read_text())
KERNELS = merkle._core.kernels() if merkle._core is not None else []
BACKENDS = ["python", *KERNELS]


def test_the_c_core_is_built_and_the_fastest_kernel_is_active() -> None:
    assert merkle._core is not None, "erasure._merkle was not built"
    assert KERNELS[0] == merkle.BACKEND
    assert "portable" in KERNELS


@pytest.fixture(params=BACKENDS, scope="module")
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.param
    saved_c, saved_kernel = merkle._C, merkle._core.get_kernel() if merkle._core else None
    if name == "python":
        merkle._C = False
    else:
        merkle._core.set_kernel(name)
        merkle._C = True
    yield name
    merkle._C = saved_c
    if saved_kernel:
        merkle._core.set_kernel(saved_kernel)


def reference_root(data: bytes, leaf_size: int) -> bytes:
    leaves = [data[i : i + leaf_size] for i in range(0, len(data), leaf_size)] or [b""]
    level = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        level = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


POW2_SIZES = sorted({max(0, 2**p + d) for p in range(0, 7) for d in (-1, 0, 1)})


@settings(max_examples=40)
@given(
    leaves=st.sampled_from([0, *POW2_SIZES, 33, 100]),
    short=st.integers(0, 1023),
    leaf_size=st.sampled_from([1, 31, 32, 64, 65, 256, 1024]),
    seed=st.integers(0, 2**32),
)
def test_roots_and_proofs_match_reference(backend: str, leaves: int, short: int, leaf_size: int, seed: int) -> None:
    import random

    size = leaves * leaf_size + short % leaf_size
    data = random.Random(seed).randbytes(size)
    expected = reference_root(data, leaf_size)
    tree = merkle.MerkleTree(data, leaf_size)
    assert tree.root == expected
    assert merkle.root(data, leaf_size) == expected
    assert tree.leaf_count == max(1, -(-size // leaf_size))
    picks = {0, tree.leaf_count - 1, seed % tree.leaf_count}
    proofs = tree.prove_many(sorted(picks))
    chunks = [data[i * leaf_size : (i + 1) * leaf_size] for i in sorted(picks)]
    assert merkle.verify_many(expected, chunks, proofs) == [True] * len(proofs)
    wrong = [c + b"!" for c in chunks]
    assert merkle.verify_many(expected, wrong, proofs) == [False] * len(proofs)


def test_large_trees_threads_and_builder_agree(backend: str) -> None:
    data = os.urandom(5 * (4 << 20) + 12345)  # several 4 MiB chunks and a short tail
    expected = merkle.root(data, 1024, 1)
    assert merkle.root(data, 1024, 2) == expected
    assert merkle.MerkleTree(data, 1024, threads=2).root == expected
    builder = merkle.MerkleBuilder(1024)
    for i in range(0, len(data), 777_777):
        builder.update(data[i : i + 777_777])
    assert builder.root() == expected
    if backend != "python":
        assert expected == reference_root(data, 1024)


def test_block_roots(backend: str) -> None:
    share = os.urandom(7 * 65536 + 1000)
    roots = merkle.block_roots(share, 65536, 1024)
    assert len(roots) == 8
    assert roots[3] == reference_root(share[3 * 65536 : 4 * 65536], 1024)
    assert merkle.root_of_nodes(roots) == merkle.root(share, 1024)
    assert merkle.block_roots(b"", 1024, 1024) == [hashlib.sha256(b"\x00").digest()]


def test_committed_vectors(backend: str) -> None:
    from tests.vectors.generate import seeded

    for case in VECTORS["cases"]:
        data = seeded(case["seed"], case["size"])
        tree = merkle.MerkleTree(data, case["leaf_size"])
        assert tree.root.hex() == case["root"], case["name"]
        for p in case["proofs"]:
            proof = merkle.MerkleProof.from_json(p)
            assert tree.prove(proof.index) == proof
            assert merkle.verify_many(tree.root, [bytes.fromhex(p["leaf_hex"])], [proof]) == [True]


def test_verify_many_rejects_malformed_batches() -> None:
    tree = merkle.MerkleTree(os.urandom(64 * 100), 64)
    good = tree.prove(5)
    leaf = b""  # wrong leaf on purpose below
    cases = [
        merkle.MerkleProof(5, good.leaf_count, good.siblings[:-1]),  # too few siblings
        merkle.MerkleProof(5, good.leaf_count, (*good.siblings, good.siblings[0])),  # too many
        merkle.MerkleProof(100, good.leaf_count, good.siblings),  # index out of range
        merkle.MerkleProof(-1, good.leaf_count, good.siblings),
        merkle.MerkleProof(6, good.leaf_count, good.siblings),  # moved
    ]
    assert merkle.verify_many(tree.root, [leaf] * len(cases), cases) == [False] * len(cases)


# ------------------------------------------------------------------ SHA-256 known answers ----

NIST = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    ),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]


@pytest.mark.parametrize("kernel", KERNELS)
def test_nist_vectors(kernel: str) -> None:
    for msg, digest in NIST:
        for count in (1, 3, 17):  # single, partial group, more than one group of lanes
            out = merkle._core.hash_batch(msg * count, len(msg), count, -1, kernel)
            assert out == bytes.fromhex(digest) * count, (kernel, len(msg), count)


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_length_to_300_and_multi_block(kernel: str) -> None:
    for length in [*range(0, 301), 1023, 1024, 1025, 4096, 65537]:
        count = 19
        data = os.urandom(length * count)
        for tag in (-1, 0x00, 0x01):
            prefix = b"" if tag < 0 else bytes([tag])
            want = b"".join(hashlib.sha256(prefix + data[i * length : (i + 1) * length]).digest() for i in range(count))
            assert merkle._core.hash_batch(data, length, count, tag, kernel) == want, (kernel, length, tag)


def test_core_argument_checks() -> None:
    with pytest.raises(ValueError, match="fit"):
        merkle._core.hash_batch(b"abc", 2, 2)
    with pytest.raises(ValueError, match="unknown kernel"):
        merkle._core.set_kernel("quantum")
    with pytest.raises(ValueError, match="multiple of 32"):
        merkle._core.level_up(b"x" * 33)
    with pytest.raises(ValueError, match="leaf_size"):
        merkle._core.root(b"", 0)
