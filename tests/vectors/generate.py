"""Regenerate the committed test vectors: ``python -m tests.vectors.generate``.

The vectors pin formats across implementations (Python, the C core, Solidity); regenerate
only when a format version changes, never to make a failing test pass.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from erasure import envelope, merkle
from erasure import manifest as manifest_mod

HERE = Path(__file__).parent


def seeded(seed: int, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"datasov-vector-{seed}-{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


CASES = [
    ("empty", 1, 0, 1024),
    ("one-byte", 2, 1, 1024),
    ("one-short-leaf", 3, 1023, 1024),
    ("one-leaf", 4, 1024, 1024),
    ("two-leaves-short", 5, 1025, 1024),
    ("odd-leaves", 6, 5 * 1024 + 7, 1024),
    ("power-of-two", 7, 16 * 1024, 1024),
    ("leaf-256", 8, 33 * 256 + 100, 256),
    ("leaf-4096", 9, 9 * 4096, 4096),
    ("leaf-32", 10, 32 * 13, 32),
]


def merkle_vectors() -> dict[str, object]:
    cases = []
    for name, seed, size, leaf_size in CASES:
        data = seeded(seed, size)
        tree = merkle.MerkleTree(data, leaf_size)
        picks = sorted({0, tree.leaf_count // 2, tree.leaf_count - 1})
        proofs = []
        for i in picks:
            p = tree.prove(i).to_json()
            p["leaf_hex"] = data[i * leaf_size : (i + 1) * leaf_size].hex()
            proofs.append(p)
        cases.append(
            {
                "name": name,
                "seed": seed,
                "size": size,
                "leaf_size": leaf_size,
                "leaf_count": tree.leaf_count,
                "root": tree.root.hex(),
                "proofs": proofs,
            }
        )
    roots = [hashlib.sha256(bytes([i])).digest() for i in range(10)]
    return {
        "version": 1,
        "definition": (
            "leaf=SHA256(0x00||leaf); node=SHA256(0x01||l||r); odd node moves up; empty data = one empty leaf"
        ),
        "data": "seeded(seed, size): concatenated SHA256('datasov-vector-{seed}-{counter}') cut to size",
        "cases": cases,
        "commitment": {"share_roots": [r.hex() for r in roots], "root": merkle.commitment_root(roots).hex()},
    }


def manifest_vector() -> dict[str, object]:
    key = bytes(range(32))
    salt = bytes(range(32, 64))
    roots = [hashlib.sha256(b"share-%d" % i).digest() for i in range(10)]
    man = manifest_mod.build(
        name="tiny-corpus",
        content="tar",
        codec="zfec",
        k=3,
        n=10,
        block_size=262144,
        leaf_size=1024,
        plaintext_size=1_000_000,
        ciphertext_size=envelope.ciphertext_size(1_000_000),
        share_size=333_339,
        header=bytes(range(24)),
        message_size=envelope.MESSAGE_SIZE,
        salt=salt,
        key_commitment=envelope.key_commitment(key, salt),
        share_roots=roots,
    )
    return {
        "version": 1,
        "data_key_hex": key.hex(),
        "canonical": man.canonical_bytes().decode(),
        "manifest_hash": man.hash().hex(),
    }


def main() -> None:
    (HERE / "merkle_v1.json").write_text(json.dumps(merkle_vectors(), indent=1) + "\n")
    (HERE / "manifest_v1.json").write_text(json.dumps(manifest_vector(), indent=1) + "\n")


if __name__ == "__main__":
    main()
