"""The dataset manifest: everything needed to fetch, verify and decode a dataset, except the key.

Canonical form: UTF-8 JSON with sorted keys and no whitespace. Its hash is
``SHA256(b"datasov/manifest/vN\\x00" || canonical bytes)`` for format version N; that is what goes
on-chain.

Version 2 (written now) encrypts with the seekable STREAM construction (:mod:`erasure.stream`;
scheme ``aes256gcm-stream-v2`` or ``chacha20poly1305-stream-v2``, a 23-byte header), its content is
a ``file`` or a ``folder`` (files back to back, then their encrypted file index, whose plaintext
span ``index = {"offset", "size"}`` is recorded here: :mod:`erasure.folderpack`). Version 1
(libsodium secretstream, ``file`` or ``tar`` content, no ``index`` field) stays readable.

The parser is strict: unknown or missing fields, wrong types, wrong lengths, unknown versions
and parameters that disagree with each other each raise a named
:class:`~erasure.errors.ManifestError`. Layout, all sizes in bytes:

- the ciphertext (AEAD messages, header kept here) is cut into ``segment_count``
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

from . import envelope, merkle, stream
from .codec import CODECS, MAX_SHARES
from .errors import ManifestError, ManifestMismatch, ParameterError, UnsupportedVersion

FORMAT = "datasov-manifest"
VERSION = 2
"""The version this code writes."""
VERSIONS = (1, 2)
"""The versions this code reads."""
HASH_TAGS = {1: b"datasov/manifest/v1\x00", 2: b"datasov/manifest/v2\x00"}
HASH_TAG = HASH_TAGS[VERSION]
MAX_MANIFEST_BYTES = 64 * 1024
CONTENT_KINDS_BY_VERSION = {1: ("file", "tar"), 2: ("file", "folder")}
CONTENT_KINDS = ("file", "tar", "folder")
SCHEMES_BY_VERSION = {1: (envelope.SCHEME,), 2: stream.SCHEMES}
MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class Encryption:
    scheme: str
    header: bytes
    message_size: int


@dataclass(frozen=True, slots=True)
class Span:
    """A plaintext byte range ``[offset, offset + size)`` of the dataset."""

    offset: int
    size: int


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
    index: Span | None = None
    """Version 2 folders: where the encrypted file index lies in the plaintext."""

    @property
    def seekable(self) -> bool:
        """Whether any message decrypts alone (version 2), so byte ranges can be read."""
        return self.version >= 2

    @property
    def tag_size(self) -> int:
        """Bytes each ciphertext message adds to its plaintext."""
        return stream.TAG_SIZE if self.version >= 2 else envelope.ABYTES

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
        doc = {
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
        if self.version >= 2:
            doc["index"] = None if self.index is None else {"offset": self.index.offset, "size": self.index.size}
        return doc

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    def hash(self) -> bytes:
        """Domain-tagged SHA-256 of the canonical form: the manifest's identity on-chain."""
        return hashlib.sha256(HASH_TAGS[self.version] + self.canonical_bytes()).digest()

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
    scheme: str = stream.AES_GCM,
    version: int = VERSION,
    index: Span | None = None,
) -> Manifest:
    """A manifest with its commitment root computed, validated (``scheme`` is ignored for version 1)."""
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
        encryption=Encryption(envelope.SCHEME if version == 1 else scheme, header, message_size),
        salt=salt,
        key_commitment=key_commitment,
        share_roots=tuple(share_roots),
        commitment_root=merkle.commitment_root(share_roots),
        version=version,
        index=index,
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
_FIELDS_V2 = {**_FIELDS, "index": object}
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


def _header_size(version: int) -> int:
    return envelope.HEADER_SIZE if version == 1 else stream.HEADER_SIZE


def _span(value: Any) -> Span | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"offset", "size"}:
        raise ManifestError('manifest: field "index" must be null or {"offset", "size"}')
    offset, size = value["offset"], value["size"]
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in (offset, size)):
        raise ManifestMismatch("index offset and size must be integers >= 0")
    return Span(offset, size)


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
    if isinstance(version, bool) or version not in VERSIONS:
        raise UnsupportedVersion(f"manifest version {version!r} is not supported (this code reads {VERSIONS})")
    _typed(obj, _FIELDS if version == 1 else _FIELDS_V2, "manifest")
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
            enc["scheme"], _hex(enc["header"], _header_size(version), "encryption.header"), enc["message_size"]
        ),
        salt=_hex(obj["salt"], envelope.SALT_SIZE, "salt"),
        key_commitment=_hex(obj["key_commitment"], 32, "key_commitment"),
        share_roots=tuple(_hex(r, 32, f"share_roots[{i}]") for i, r in enumerate(roots)),
        commitment_root=_hex(obj["commitment_root"], 32, "commitment_root"),
        version=version,
        index=_span(obj.get("index")),
    )
    if obj["segment_size"] != m.segment_size:
        raise ManifestMismatch(f"segment_size {obj['segment_size']} != k * block_size = {m.segment_size}")
    _validate(m)
    if obj["segment_count"] != m.segment_count:
        raise ManifestMismatch(f"segment_count {obj['segment_count']} != {m.segment_count}")
    return m


def _validate(m: Manifest) -> None:
    if m.version not in VERSIONS:
        raise UnsupportedVersion(f"manifest version {m.version} is not supported")
    if m.codec not in CODECS:
        raise ManifestMismatch(f"unknown codec {m.codec!r}")
    kinds = CONTENT_KINDS_BY_VERSION[m.version]
    if m.content not in kinds:
        raise ManifestMismatch(f"content must be one of {kinds} in version {m.version}")
    if len(m.name) > MAX_NAME or "/" in m.name or "\x00" in m.name or m.name in (".", ".."):
        raise ManifestMismatch("name must be a plain file name of at most 255 characters")
    if not 1 <= m.k < m.n <= MAX_SHARES:
        raise ManifestMismatch(f"need 1 <= k < n <= {MAX_SHARES}, got k={m.k}, n={m.n}")
    try:
        merkle.check_block_layout(m.block_size, m.leaf_size)
    except ParameterError as err:
        raise ManifestMismatch(str(err)) from err
    enc = m.encryption
    if enc.scheme not in SCHEMES_BY_VERSION[m.version]:
        raise ManifestMismatch(f"unknown encryption scheme {enc.scheme!r} for version {m.version}")
    if len(enc.header) != _header_size(m.version):
        raise ManifestMismatch(f"encryption.header must be {_header_size(m.version)} bytes")
    if not 1 <= enc.message_size <= 64 * 1024 * 1024:
        raise ManifestMismatch("encryption.message_size out of range")
    sizing = envelope.ciphertext_size if m.version == 1 else stream.ciphertext_size
    if m.plaintext_size < 0 or sizing(m.plaintext_size, enc.message_size) != m.ciphertext_size:
        raise ManifestMismatch("ciphertext_size does not match plaintext_size and message_size")
    if m.version == 1 and m.index is not None:
        raise ManifestMismatch("version 1 manifests have no file index")
    if m.version >= 2 and (m.index is not None) != (m.content == "folder"):
        raise ManifestMismatch("a folder, and only a folder, records its file index")
    if m.index is not None and m.index.offset + m.index.size != m.plaintext_size:
        raise ManifestMismatch("the file index must end the plaintext")
    last = m.ciphertext_size - (m.segment_count - 1) * m.segment_size
    full = (m.segment_count - 1) * m.block_size
    low, high = full + -(-last // m.k), full + m.block_size
    if not low <= m.share_size <= high:
        raise ManifestMismatch(f"share_size {m.share_size} outside [{low}, {high}] for this layout")
    if len(m.share_roots) != m.n or any(len(r) != 32 for r in m.share_roots):
        raise ManifestMismatch(f"need {m.n} share roots of 32 bytes")
    if merkle.commitment_root(list(m.share_roots)) != m.commitment_root:
        raise ManifestMismatch("commitment_root is not the Merkle root of share_roots")
