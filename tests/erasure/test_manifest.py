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
VECTOR_V2 = json.loads((Path(__file__).parent.parent / "vectors" / "manifest_v2.json").read_text())


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
        ("version", 3, UnsupportedVersion),
        ("version", True, UnsupportedVersion),
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


def test_committed_v2_vector_parses_and_hashes() -> None:
    m = manifest.parse(VECTOR_V2["canonical"])
    assert m.canonical_bytes().decode() == VECTOR_V2["canonical"]
    assert m.hash().hex() == VECTOR_V2["manifest_hash"]
    assert (m.version, m.content, m.encryption.scheme) == (2, "folder", "aes256gcm-stream-v2")
    assert m.index == manifest.Span(999_000, 1_000)
    assert m.seekable


def v2_doc() -> dict[str, Any]:
    return json.loads(VECTOR_V2["canonical"])


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("index", KeyError, ManifestError),
        ("index", None, ManifestMismatch),  # a folder records its index
        ("index", {"offset": 1}, ManifestError),
        ("index", {"offset": -1, "size": 1_000}, ManifestMismatch),
        ("index", {"offset": 0, "size": 1_000}, ManifestMismatch),  # must end the plaintext
        ("content", "tar", ManifestMismatch),  # tar is version 1's
        ("version", 1, ManifestError),  # version 1 has no index field
    ],
)
def test_strict_v2_parser(field: str, value: Any, error: type[Exception]) -> None:
    d = v2_doc()
    if value is KeyError:
        del d[field]
    else:
        d[field] = value
    with pytest.raises(error):
        manifest.parse(json.dumps(d))


@pytest.mark.parametrize(
    ("field", "value"),
    [("scheme", "xchacha20poly1305-secretstream-v1"), ("header", "ab" * 24), ("scheme", "rot13")],
)
def test_v2_encryption_fields_are_checked(field: str, value: Any) -> None:
    d = v2_doc()
    d["encryption"][field] = value
    with pytest.raises(ManifestMismatch):
        manifest.parse(json.dumps(d))


def test_v1_and_v2_hash_under_different_tags() -> None:
    v1 = manifest.parse(VECTOR["canonical"])
    assert v1.version == 1
    assert not v1.seekable
    assert v1.index is None
    assert "index" not in v1.to_json()
