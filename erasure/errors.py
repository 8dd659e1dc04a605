"""Errors raised by the data pipeline.

Every error the pipeline raises on purpose derives from :class:`ErasureError`::

    ErasureError
    ├── ParameterError          codec/layout parameters out of range or inconsistent
    ├── CodecUnavailable        the requested codec's library is not installed
    ├── EnvelopeError           encryption layer
    │   ├── DecryptionError     wrong key, flipped bit, reordered/dropped/truncated message
    │   │   ├── MessageForged   a v2 message does not authenticate at its position
    │   │   ├── StreamTruncated the v2 stream ends before its final message
    │   │   └── StreamExtended  bytes follow the v2 stream's final message
    │   └── KeyWrapError        a sealed data key could not be opened
    ├── ManifestError           manifest could not be parsed or is inconsistent
    │   ├── UnsupportedVersion  a format version this code does not know
    │   └── ManifestMismatch    a field disagrees with the others (lengths, roots, sizes)
    ├── FileIndexError          a folder dataset's file index is malformed, or names no such file
    ├── NotSeekable             a byte range asked of a version-1 (secretstream) dataset
    ├── IntegrityError          a share or block does not match its committed root
    └── NotEnoughShares         fewer than k good blocks for a segment

    TimeoutError
    └── Lagging                 a share source's read is behind its holder class's usual latency
                                (a hedge: the decoder asks a spare holder; not an ErasureError)

Errors caught at a boundary are re-raised with ``raise X(...) from err`` so the original
cause is never lost.
"""

from __future__ import annotations


class ErasureError(Exception):
    """Base of every error raised on purpose by :mod:`erasure`."""


class ParameterError(ErasureError, ValueError):
    """Codec or layout parameters are out of range or inconsistent."""


class CodecUnavailable(ErasureError):
    """The codec's library is not installed on this machine."""


class EnvelopeError(ErasureError):
    """Base of the encryption layer's errors."""


class DecryptionError(EnvelopeError):
    """Ciphertext failed authentication: wrong key or header, or a message was altered,
    reordered, dropped or truncated, or data follows the final message."""


class KeyWrapError(EnvelopeError):
    """A sealed data key could not be opened with the given private key."""


class MessageForged(DecryptionError):
    """A v2 message failed authentication at its position: altered, reordered, dropped, or under
    another key or header."""


class StreamTruncated(DecryptionError):
    """A v2 stream ends on a message that was not sealed as the final one."""


class StreamExtended(DecryptionError):
    """A v2 message sealed as the final one is followed by more ciphertext."""


class FileIndexError(ErasureError):
    """A folder dataset's file index is malformed or inconsistent, or names no such file."""


class NotSeekable(ErasureError):
    """A byte range was asked of a version-1 (secretstream) dataset, which decrypts only from the start."""


class ManifestError(ErasureError, ValueError):
    """A manifest could not be parsed."""


class UnsupportedVersion(ManifestError):
    """The manifest (or another format) carries a version this code does not know."""


class ManifestMismatch(ManifestError):
    """A manifest field is inconsistent with the others."""


class IntegrityError(ErasureError):
    """Bytes do not match the Merkle root they were committed under."""

    def __init__(self, message: str, *, share: int | None = None, segment: int | None = None) -> None:
        super().__init__(message)
        self.share = share
        self.segment = segment


class NotEnoughShares(ErasureError):
    """Fewer than k verified blocks were available for a segment."""

    def __init__(self, message: str, *, segment: int, good: int, needed: int) -> None:
        super().__init__(message)
        self.segment = segment
        self.good = good
        self.needed = needed


class Lagging(TimeoutError):
    """A share source's read is slower than its holder class's usual latency (a hedge, "tail at
    scale"): the decoder asks a spare holder for that block now and waits on the laggard only if
    the spares do not make up k. Not counted towards :data:`erasure.pipeline.SLOW_ROUNDS`."""
