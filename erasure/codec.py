"""k-of-n erasure codes behind one interface.

A :class:`Codec` turns one segment of ``L`` bytes into ``n`` blocks of ``block_size(L)`` bytes
each, such that any ``k`` of them, with their indices, give the segment back. Blocks
``0..k-1`` are systematic (the segment itself, cut in k), so decoding from them is a copy.

Implementations (one conformance suite in ``tests/erasure/test_codec.py`` runs over all):

- ``zfec``: Reed-Solomon over GF(2^8) from zfec (Tahoe-LAFS), the default. Releases the GIL,
  so threads scale with cores.
- ``isal``: Intel ISA-L Cauchy Reed-Solomon through pyeclib/liberasurecode, the fast one.
  liberasurecode prefixes every fragment with a header that, with checksums off, depends only
  on the segment length and the fragment index; we strip it so blocks hold only coded bytes
  (and stay aligned to Merkle leaves), and rebuild it from a per-length template to decode.

Parameters: ``1 <= k < n <= 256`` for every codec, plus each library's own limits; violations
raise :class:`~erasure.errors.ParameterError`. A missing library raises
:class:`~erasure.errors.CodecUnavailable`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from .errors import CodecUnavailable, ErasureError, ParameterError

MAX_SHARES = 256
DEFAULT_CODEC = "zfec"
CODECS = ("zfec", "isal")


class Codec(Protocol):
    """What the pipeline needs of an erasure code."""

    @property
    def name(self) -> str: ...
    @property
    def k(self) -> int: ...
    @property
    def n(self) -> int: ...

    def block_size(self, segment_len: int) -> int:
        """Bytes in each of the n blocks of a segment of ``segment_len`` (>= 1) bytes."""
        ...

    def encode(self, segment: bytes) -> list[bytes]:
        """The n blocks of ``segment`` (non-empty), each ``block_size(len(segment))`` bytes."""
        ...

    def decode(self, blocks: Mapping[int, bytes], segment_len: int) -> bytes:
        """The segment of ``segment_len`` bytes from at least k blocks keyed by block index.

        Raises :class:`ParameterError` for fewer than k blocks, an index outside ``[0, n)``
        or a block of the wrong size.
        """
        ...


def check_params(k: int, n: int) -> None:
    if not (isinstance(k, int) and isinstance(n, int)):
        raise ParameterError("k and n must be integers")
    if not 1 <= k < n <= MAX_SHARES:
        raise ParameterError(f"need 1 <= k < n <= {MAX_SHARES}, got k={k}, n={n}")


def _check_segment(segment_len: int) -> None:
    if segment_len < 1:
        raise ParameterError(f"segment must be at least 1 byte, got {segment_len}")


def _pick_blocks(blocks: Mapping[int, bytes], k: int, n: int, expected: int) -> list[tuple[int, bytes]]:
    for i, b in blocks.items():
        if not 0 <= i < n:
            raise ParameterError(f"block index {i} out of range [0, {n})")
        if len(b) != expected:
            raise ParameterError(f"block {i} is {len(b)} bytes, expected {expected}")
    if len(blocks) < k:
        raise ParameterError(f"need {k} blocks to decode, got {len(blocks)}")
    # Prefer systematic blocks: decoding from them is a copy.
    return sorted(blocks.items())[:k]


class ZfecCodec:
    """Reed-Solomon erasure code from zfec."""

    name = "zfec"

    def __init__(self, k: int, n: int) -> None:
        check_params(k, n)
        try:
            import zfec
        except ImportError as err:  # pragma: no cover - zfec is a hard dependency
            raise CodecUnavailable("zfec is not installed") from err
        self.k, self.n = k, n
        self._encoder = zfec.Encoder(k, n)
        self._decoder = zfec.Decoder(k, n)

    def block_size(self, segment_len: int) -> int:
        _check_segment(segment_len)
        return -(-segment_len // self.k)

    def encode(self, segment: bytes) -> list[bytes]:
        size = self.block_size(len(segment))
        pad = size * self.k - len(segment)
        data = bytes(segment) + bytes(pad) if pad else segment
        view = memoryview(data)
        primary = [view[i * size : (i + 1) * size] for i in range(self.k)]
        return [bytes(b) for b in self._encoder.encode(primary)]

    def decode(self, blocks: Mapping[int, bytes], segment_len: int) -> bytes:
        chosen = _pick_blocks(blocks, self.k, self.n, self.block_size(segment_len))
        if all(i == pos for pos, (i, _) in enumerate(chosen)):
            primary = [b for _, b in chosen]
        else:
            primary = self._decoder.decode([b for _, b in chosen], [i for i, _ in chosen])
        return b"".join(primary)[:segment_len]


class IsalCodec:
    """Cauchy Reed-Solomon from Intel ISA-L, through pyeclib."""

    name = "isal"
    EC_TYPE = "isa_l_rs_cauchy"

    def __init__(self, k: int, n: int) -> None:
        check_params(k, n)
        try:
            from pyeclib.ec_iface import ECDriver
        except ImportError as err:
            raise CodecUnavailable("pyeclib (with liberasurecode) is not installed") from err
        try:
            self._driver = ECDriver(k=k, m=n - k, ec_type=self.EC_TYPE, chksum_type="none")
        except Exception as err:  # pyeclib raises its own ECDriverError family
            if "isa" in str(err).lower() and "not available" in str(err).lower():
                raise CodecUnavailable(f"ISA-L backend unavailable: {err}") from err
            raise ParameterError(f"isal cannot do k={k}, n={n}: {err}") from err
        self.k, self.n = k, n
        self._lock = threading.Lock()
        self._templates: dict[int, tuple[list[bytes], int]] = {}
        probe = self._driver.encode(bytes(k * 4096))
        self._header_len = len(probe[0]) - 4096
        if self._header_len <= 0:
            raise CodecUnavailable("unexpected liberasurecode fragment layout")

    def _template(self, segment_len: int) -> tuple[list[bytes], int]:
        """Fragment headers and payload size for segments of this length (encoded once)."""
        template = self._templates.get(segment_len)
        if template is None:
            frags = self._driver.encode(bytes(segment_len))
            h = self._header_len
            template = ([bytes(f[:h]) for f in frags], len(frags[0]) - h)
            with self._lock:
                if len(self._templates) > 64:
                    self._templates.clear()
                self._templates[segment_len] = template
        return template

    def block_size(self, segment_len: int) -> int:
        _check_segment(segment_len)
        return self._template(segment_len)[1]

    def encode(self, segment: bytes) -> list[bytes]:
        _check_segment(len(segment))
        headers, _ = self._template(len(segment))
        frags = self._driver.encode(bytes(segment))
        h = self._header_len
        if any(f[:h] != t for f, t in zip(frags, headers, strict=True)):
            raise ErasureError("liberasurecode fragment headers depend on content; cannot strip them")
        return [f[h:] for f in frags]

    def decode(self, blocks: Mapping[int, bytes], segment_len: int) -> bytes:
        chosen = _pick_blocks(blocks, self.k, self.n, self.block_size(segment_len))
        headers, _ = self._template(segment_len)
        try:
            data = self._driver.decode([headers[i] + bytes(b) for i, b in chosen])
        except Exception as err:
            raise ErasureError(f"isal decode failed: {err}") from err
        return bytes(data)


def get_codec(name: str, k: int, n: int) -> Codec:
    """The codec ``name`` ("zfec" or "isal") for k-of-n."""
    if name == "zfec":
        return ZfecCodec(k, n)
    if name == "isal":
        return IsalCodec(k, n)
    raise ParameterError(f"unknown codec {name!r}; known: {', '.join(CODECS)}")


def available_codecs() -> list[str]:
    """Codecs whose libraries load on this machine."""
    names = []
    for name in CODECS:
        try:
            get_codec(name, 1, 2)
        except CodecUnavailable:
            continue
        names.append(name)
    return names
