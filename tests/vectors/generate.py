"""Regenerate the committed test vectors: ``python -m tests.vectors.generate``.

The vectors pin formats across implementations (Python, the C core, Solidity); regenerate
only when a format version changes, never to make a failing test pass.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from erasure import envelope, merkle, stream
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
        version=1,
    )
    return {
        "version": 1,
        "data_key_hex": key.hex(),
        "canonical": man.canonical_bytes().decode(),
        "manifest_hash": man.hash().hex(),
    }


def manifest_v2_vector() -> dict[str, object]:
    """A version-2 folder manifest (AES-256-GCM STREAM, 64 KiB ciphertext messages, index at the end)."""
    key = bytes(range(32))
    salt = bytes(range(32, 64))
    roots = [hashlib.sha256(b"share-%d" % i).digest() for i in range(10)]
    plaintext = 1_000_000
    ciphertext = stream.ciphertext_size(plaintext)
    man = manifest_mod.build(
        name="tiny-corpus",
        content="folder",
        codec="zfec",
        k=3,
        n=10,
        block_size=262144,
        leaf_size=1024,
        plaintext_size=plaintext,
        ciphertext_size=ciphertext,
        share_size=262144 + -(-(ciphertext - 3 * 262144) // 3),
        header=bytes(range(stream.HEADER_SIZE)),
        message_size=stream.MESSAGE_SIZE,
        salt=salt,
        key_commitment=envelope.key_commitment(key, salt),
        share_roots=roots,
        scheme=stream.AES_GCM,
        version=2,
        index=manifest_mod.Span(999_000, 1_000),
    )
    return {
        "version": 2,
        "data_key_hex": key.hex(),
        "canonical": man.canonical_bytes().decode(),
        "manifest_hash": man.hash().hex(),
    }


def stream_vectors() -> dict[str, object]:
    """STREAM ciphertexts for both AEADs: fixed key and header, small messages, seeded plaintexts."""
    key = bytes(range(100, 132))
    header = bytes(range(200, 200 + stream.HEADER_SIZE))
    cases = []
    for scheme in stream.SCHEMES:
        for name, seed, size in (("empty", 1, 0), ("one-message", 2, 100), ("three-messages", 3, 250)):
            data = seeded(seed, size)
            _, messages = stream.encrypt_stream(key, [data], scheme=scheme, message_size=100, header=header)
            cases.append(
                {
                    "name": name,
                    "scheme": scheme,
                    "seed": seed,
                    "size": size,
                    "message_size": 100,
                    "messages": [m.hex() for m in messages],
                }
            )
    return {
        "version": 2,
        "definition": (
            "subkey=HKDF-SHA256(ikm=key, salt=header[:16], info='datasov/stream-subkey/v2\\0'||scheme); "
            "nonce=header[16:23]||uint32_be(i)||last; one AEAD call per message, no associated data"
        ),
        "key_hex": key.hex(),
        "header_hex": header.hex(),
        "cases": cases,
    }


def main() -> None:
    (HERE / "merkle_v1.json").write_text(json.dumps(merkle_vectors(), indent=1) + "\n")
    (HERE / "manifest_v1.json").write_text(json.dumps(manifest_vector(), indent=1) + "\n")
    (HERE / "manifest_v2.json").write_text(json.dumps(manifest_v2_vector(), indent=1) + "\n")
    (HERE / "stream_v2.json").write_text(json.dumps(stream_vectors(), indent=1) + "\n")


if __name__ == "__main__":
    main()
