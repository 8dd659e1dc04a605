"""The manifest format: committed vector, canonical round trip, strict parsing."""

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure import manifest
from erasure.errors import ManifestError, ManifestMismatch, UnsupportedVersion

VECTOR = json.loads((Path(__file__).parent.parent / "vectors" / "manifest_v1.json").read_text())


def doc() -> dict[str, Any]:
    return json.loads(VECTOR["canonical"])


def test_committed_vector_parses_and_hashes() -> None:
    m = manifest.parse(VECTOR["canonical"])
    assert m.canonical_bytes().decode() == VECTOR["canonical"]
    assert m.hash().hex() == VECTOR["manifest_hash"]
    assert (m.k, m.n, m.codec, m.content, m.name) == (3, 10, "zfec", "tar", "tiny-corpus")
    assert m.segment_count == 2


def test_whitespace_does_not_change_identity() -> None:
    pretty = json.dumps(doc(), indent=4)
    assert manifest.parse(pretty).hash().hex() == VECTOR["manifest_hash"]


def mutate(path: str, value: Any) -> dict[str, Any]:
    d = doc()
    target = d
    *parents, last = path.split(".")
    for p in parents:
        target = target[p]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return d


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        ("version", 2, UnsupportedVersion),
        ("version", "1", UnsupportedVersion),
        ("format", "other", ManifestError),
        ("extra", 1, ManifestError),
        ("k", KeyError, ManifestError),
        ("k", True, ManifestError),
        ("k", 10, ManifestMismatch),
        ("k", 0, ManifestMismatch),
        ("n", 257, ManifestMismatch),
        ("codec", "lz4", ManifestMismatch),
        ("content", "zip", ManifestMismatch),
        ("name", "../etc/passwd", ManifestMismatch),
        ("block_size", 3000, ManifestMismatch),
        ("segment_size", 1, ManifestMismatch),
        ("segment_count", 3, ManifestMismatch),
        ("plaintext_size", 999_999, ManifestMismatch),
        ("ciphertext_size", 1_000_018, ManifestMismatch),
        ("share_size", 333_338, ManifestMismatch),
        ("salt", "00", ManifestMismatch),
        ("key_commitment", "zz" * 32, ManifestMismatch),
        ("commitment_root", "00" * 32, ManifestMismatch),
        ("encryption.scheme", "aes", ManifestMismatch),
        ("encryption.header", "AB" * 24, ManifestMismatch),
        ("encryption.extra", 0, ManifestError),
        ("encryption.message_size", 0, ManifestMismatch),
    ],
)
def test_strict_parser(path: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        manifest.parse(json.dumps(mutate(path, value)))


def test_share_roots_tampering_is_detected() -> None:
    d = doc()
    d["share_roots"][3] = "11" * 32
    with pytest.raises(ManifestMismatch, match="commitment_root"):
        manifest.parse(json.dumps(d))
    d = doc()
    d["share_roots"].pop()
    with pytest.raises(ManifestMismatch):
        manifest.parse(json.dumps(d))


@pytest.mark.parametrize("raw", [b"", b"[]", b"{", b"\xff\xfe", b"null", b"1" * 70_000])
def test_garbage_is_a_manifest_error(raw: bytes) -> None:
    with pytest.raises(ManifestError):
        manifest.parse(raw)


@given(pos=st.integers(0, 10**6), char=st.characters(codec="ascii"))
def test_single_character_edits_never_crash(pos: int, char: str) -> None:
    text = VECTOR["canonical"]
    i = pos % len(text)
    edited = text[:i] + char + text[i + 1 :]
    try:
        m = manifest.parse(edited)
    except ManifestError:
        return
    assert m.hash().hex() == VECTOR["manifest_hash"] or m.canonical_bytes() != text.encode()
