"""The dataset manifest: everything needed to fetch, verify and decode a dataset, except the key.

Canonical form: UTF-8 JSON with sorted keys and no whitespace. Its hash is
``SHA256(b"datasov/manifest/v1\\x00" || canonical bytes)``; that is what goes on-chain.

The parser is strict: unknown or missing fields, wrong types, wrong lengths, unknown versions
and parameters that disagree with each other each raise a named
:class:`~erasure.errors.ManifestError`. Layout, all sizes in bytes:

- the ciphertext (secretstream messages, header kept here) is cut into ``segment_count``
  segments of ``segment_size = k * block_size`` bytes, the last one shorter;
- each segment is coded into n blocks; share i is block i of every segment, so it is
  ``share_size`` bytes: full blocks of ``block_size`` and a last block sized by the codec;
- each share is a Merkle tree of ``leaf_size`` leaves (``block_size`` is ``leaf_size`` times a
  power of two, so each block is one subtree); ``commitment_root`` is the tree over the
  share roots.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from . import envelope, merkle
from .codec import CODECS, MAX_SHARES
from .errors import ManifestError, ManifestMismatch, ParameterError, UnsupportedVersion

FORMAT = "datasov-manifest"
VERSION = 1
HASH_TAG = b"datasov/manifest/v1\x00"
MAX_MANIFEST_BYTES = 64 * 1024
CONTENT_KINDS = ("file", "tar")
MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class Encryption:
    scheme: str
    header: bytes
    message_size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    content: str
    codec: str
    k: int
    n: int
    block_size: int
    leaf_size: int
    plaintext_size: int
    ciphertext_size: int
    share_size: int
    encryption: Encryption
    salt: bytes
    key_commitment: bytes
    share_roots: tuple[bytes, ...]
    commitment_root: bytes = field(default=b"")
    version: int = VERSION

    @property
    def segment_size(self) -> int:
        return self.k * self.block_size

    @property
    def segment_count(self) -> int:
        return -(-self.ciphertext_size // self.segment_size)

    def segment_len(self, index: int) -> int:
        """Ciphertext bytes in segment ``index``."""
        if not 0 <= index < self.segment_count:
            raise ParameterError(f"segment {index} out of range [0, {self.segment_count})")
        return min(self.segment_size, self.ciphertext_size - index * self.segment_size)

    def block_offset(self, segment: int) -> int:
        """Offset of segment's block inside each share file."""
        return segment * self.block_size

    def to_json(self) -> dict[str, Any]:
        enc = asdict(self.encryption)
        enc["header"] = self.encryption.header.hex()
        return {
            "format": FORMAT,
            "version": self.version,
            "name": self.name,
            "content": self.content,
            "codec": self.codec,
            "k": self.k,
            "n": self.n,
            "block_size": self.block_size,
            "leaf_size": self.leaf_size,
            "segment_size": self.segment_size,
            "segment_count": self.segment_count,
            "plaintext_size": self.plaintext_size,
            "ciphertext_size": self.ciphertext_size,
            "share_size": self.share_size,
            "encryption": enc,
            "salt": self.salt.hex(),
            "key_commitment": self.key_commitment.hex(),
            "share_roots": [r.hex() for r in self.share_roots],
            "commitment_root": self.commitment_root.hex(),
        }

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    def hash(self) -> bytes:
        """Domain-tagged SHA-256 of the canonical form: the manifest's identity on-chain."""
        return hashlib.sha256(HASH_TAG + self.canonical_bytes()).digest()

    def validate(self) -> None:
        """Raise :class:`ManifestError` unless every field agrees with the others."""
        _validate(self)


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def build(
    *,
    name: str,
    content: str,
    codec: str,
    k: int,
    n: int,
    block_size: int,
    leaf_size: int,
    plaintext_size: int,
    ciphertext_size: int,
    share_size: int,
    header: bytes,
    message_size: int,
    salt: bytes,
    key_commitment: bytes,
    share_roots: list[bytes],
) -> Manifest:
    """A manifest with its commitment root computed, validated."""
    m = Manifest(
        name=name,
        content=content,
        codec=codec,
        k=k,
        n=n,
        block_size=block_size,
        leaf_size=leaf_size,
        plaintext_size=plaintext_size,
        ciphertext_size=ciphertext_size,
        share_size=share_size,
        encryption=Encryption(envelope.SCHEME, header, message_size),
        salt=salt,
        key_commitment=key_commitment,
        share_roots=tuple(share_roots),
        commitment_root=merkle.commitment_root(share_roots),
    )
    m.validate()
    return m


_FIELDS = {
    "format": str,
    "version": int,
    "name": str,
    "content": str,
    "codec": str,
    "k": int,
    "n": int,
    "block_size": int,
    "leaf_size": int,
    "segment_size": int,
    "segment_count": int,
    "plaintext_size": int,
    "ciphertext_size": int,
    "share_size": int,
    "encryption": dict,
    "salt": str,
    "key_commitment": str,
    "share_roots": list,
    "commitment_root": str,
}
_ENC_FIELDS = {"scheme": str, "header": str, "message_size": int}


def _typed(obj: dict[str, Any], spec: dict[str, type], where: str) -> None:
    missing = spec.keys() - obj.keys()
    extra = obj.keys() - spec.keys()
    if missing:
        raise ManifestError(f"{where}: missing field(s) {sorted(missing)}")
    if extra:
        raise ManifestError(f"{where}: unknown field(s) {sorted(extra)}")
    for key, kind in spec.items():
        value = obj[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ManifestError(f"{where}: field {key!r} must be {kind.__name__}")


def _hex(value: Any, size: int, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or value != value.lower():
        raise ManifestMismatch(f"{what} must be {size} bytes as lowercase hex")
    try:
        return bytes.fromhex(value)
    except ValueError as err:
        raise ManifestMismatch(f"{what} is not hex") from err


def parse(raw: bytes | str) -> Manifest:
    """Parse and fully validate a manifest."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ManifestError(f"manifest is not valid JSON: {err}") from err
    if not isinstance(obj, dict):
        raise ManifestError("manifest must be a JSON object")
    return from_json(obj)


def from_json(obj: dict[str, Any]) -> Manifest:
    if obj.get("format") != FORMAT:
        raise ManifestError(f"not a {FORMAT} document")
    version = obj.get("version")
    if version != VERSION:
        raise UnsupportedVersion(f"manifest version {version!r} is not supported (this code reads {VERSION})")
    _typed(obj, _FIELDS, "manifest")
    _typed(obj["encryption"], _ENC_FIELDS, "manifest.encryption")
    n = obj["n"]
    roots = obj["share_roots"]
    if not isinstance(n, int) or not 1 < n <= MAX_SHARES or len(roots) != n:
        raise ManifestMismatch(f"share_roots has {len(roots)} entries for n={n}")
    enc = obj["encryption"]
    m = Manifest(
        name=obj["name"],
        content=obj["content"],
        codec=obj["codec"],
        k=obj["k"],
        n=n,
        block_size=obj["block_size"],
        leaf_size=obj["leaf_size"],
        plaintext_size=obj["plaintext_size"],
        ciphertext_size=obj["ciphertext_size"],
        share_size=obj["share_size"],
        encryption=Encryption(
            enc["scheme"], _hex(enc["header"], envelope.HEADER_SIZE, "encryption.header"), enc["message_size"]
        ),
        salt=_hex(obj["salt"], envelope.SALT_SIZE, "salt"),
        key_commitment=_hex(obj["key_commitment"], 32, "key_commitment"),
        share_roots=tuple(_hex(r, 32, f"share_roots[{i}]") for i, r in enumerate(roots)),
        commitment_root=_hex(obj["commitment_root"], 32, "commitment_root"),
        version=version,
    )
    if obj["segment_size"] != m.segment_size:
        raise ManifestMismatch(f"segment_size {obj['segment_size']} != k * block_size = {m.segment_size}")
    _validate(m)
    if obj["segment_count"] != m.segment_count:
        raise ManifestMismatch(f"segment_count {obj['segment_count']} != {m.segment_count}")
    return m


def _validate(m: Manifest) -> None:
    if m.version != VERSION:
        raise UnsupportedVersion(f"manifest version {m.version} is not supported")
    if m.codec not in CODECS:
        raise ManifestMismatch(f"unknown codec {m.codec!r}")
    if m.content not in CONTENT_KINDS:
        raise ManifestMismatch(f"content must be one of {CONTENT_KINDS}")
    if len(m.name) > MAX_NAME or "/" in m.name or "\x00" in m.name or m.name in (".", ".."):
        raise ManifestMismatch("name must be a plain file name of at most 255 characters")
    if not 1 <= m.k < m.n <= MAX_SHARES:
        raise ManifestMismatch(f"need 1 <= k < n <= {MAX_SHARES}, got k={m.k}, n={m.n}")
    try:
        merkle.check_block_layout(m.block_size, m.leaf_size)
    except ParameterError as err:
        raise ManifestMismatch(str(err)) from err
    enc = m.encryption
    if enc.scheme != envelope.SCHEME:
        raise ManifestMismatch(f"unknown encryption scheme {enc.scheme!r}")
    if not 1 <= enc.message_size <= 64 * 1024 * 1024:
        raise ManifestMismatch("encryption.message_size out of range")
    if m.plaintext_size < 0 or envelope.ciphertext_size(m.plaintext_size, enc.message_size) != m.ciphertext_size:
        raise ManifestMismatch("ciphertext_size does not match plaintext_size and message_size")
    last = m.ciphertext_size - (m.segment_count - 1) * m.segment_size
    full = (m.segment_count - 1) * m.block_size
    low, high = full + -(-last // m.k), full + m.block_size
    if not low <= m.share_size <= high:
        raise ManifestMismatch(f"share_size {m.share_size} outside [{low}, {high}] for this layout")
    if len(m.share_roots) != m.n or any(len(r) != 32 for r in m.share_roots):
        raise ManifestMismatch(f"need {m.n} share roots of 32 bytes")
    if merkle.commitment_root(list(m.share_roots)) != m.commitment_root:
        raise ManifestMismatch("commitment_root is not the Merkle root of share_roots")
