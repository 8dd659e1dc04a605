"""Plaintext of a whole format-v2 dataset written segment by segment, in any order, from verified
ciphertext: what a whole fetch does with the k systematic blocks of each segment.

Blocks ``0..k-1`` of a segment are the segment cut in k (both codecs), so with those k blocks no
decoding is needed: the segment is their concatenation, cut to its length. :class:`SegmentWriter`
checks each such block against its share's committed block root (:meth:`SegmentWriter.verify`,
the SIMD Merkle core, which releases the GIL), opens the segment's AEAD messages and writes their
plaintext at its place in the output file with ``os.pwritev``: segments may come in any order and
from several threads, and nothing is buffered beyond the segment in hand. A segment decoded from
other blocks (:meth:`erasure.decoding.Decoder.segment`) is written the same way
(:meth:`SegmentWriter.write_segment`).

Only layouts whose segments hold whole AEAD messages are written this way (``segment_size`` a
multiple of ``message_size + TAG_SIZE``; the default layout is: 12 messages of 64 KiB per 3 x 256
KiB segment): :func:`fits` says whether a manifest's does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from . import envelope, merkle, stream
from .codec import get_codec
from .errors import DecryptionError, IntegrityError, NotSeekable
from .manifest import Manifest


def fits(man: Manifest) -> bool:
    """Can this dataset be written segment by segment (v2, whole AEAD messages per segment)?"""
    if not man.seekable:
        return False
    return man.segment_size % (man.encryption.message_size + stream.TAG_SIZE) == 0


class SegmentWriter:
    """Verified ciphertext segments -> plaintext at its offsets in the file open as ``fd`` (thread-safe).

    ``roots`` maps a systematic share index to its block roots, already checked against the
    manifest's share root (:func:`erasure.merkle.verify_block_roots`). ``written`` counts
    plaintext bytes; :meth:`missing` lists the segments not written yet."""

    def __init__(self, man: Manifest, key: bytes, fd: int, roots: dict[int, Sequence[bytes]]) -> None:
        if not fits(man):
            raise NotSeekable(f"manifest version {man.version}: segments do not hold whole messages")
        if not envelope.check_key_commitment(key, man.salt, man.key_commitment):
            raise DecryptionError("data key does not match the manifest's key commitment")
        enc = man.encryption
        self.manifest = man
        self._cipher = stream.StreamCipher(key, enc.header, scheme=enc.scheme, message_size=enc.message_size)
        self._full = enc.message_size + stream.TAG_SIZE
        self._messages = stream.message_count(man.plaintext_size, enc.message_size)
        self._codec = get_codec(man.codec, man.k, man.n)
        self._fd = fd
        self._roots = roots
        self._lock = threading.Lock()
        self._done: set[int] = set()
        self.written = 0

    def block_size(self, segment: int) -> int:
        """Bytes of each block of ``segment`` (the last segment's are shorter)."""
        return self._codec.block_size(self.manifest.segment_len(segment))

    def verify(self, share: int, segment: int, block: bytes | bytearray) -> None:
        """:class:`IntegrityError` unless ``block`` is share ``share``'s committed block of ``segment``."""
        if len(block) != self.block_size(segment) or (
            merkle.root(block, self.manifest.leaf_size) != self._roots[share][segment]
        ):
            raise IntegrityError(
                f"share {share}: block of segment {segment} does not match its committed root",
                share=share,
                segment=segment,
            )

    def write_blocks(self, segment: int, blocks: Sequence[bytes | bytearray]) -> int:
        """Check the k systematic ``blocks`` of ``segment`` (block j from share j), then write it."""
        for j, block in enumerate(blocks):
            self.verify(j, segment, block)
        size, length = self.block_size(segment), self.manifest.segment_len(segment)
        if size % self._full or length != size * len(blocks):  # messages cross blocks (or padding): join
            return self.write_segment(segment, b"".join(blocks)[:length])
        full = self._full  # each block holds whole messages: opened where they are, no joined copy
        return self._write(segment, [memoryview(b)[at : at + full] for b in blocks for at in range(0, size, full)])

    def write_segment(self, segment: int, ciphertext: bytes) -> int:
        """Open the messages of a verified ciphertext ``segment`` and write their plaintext in
        place; the plaintext bytes written (a :class:`DecryptionError` if a message does not open)."""
        full = self._full
        view = memoryview(ciphertext)
        return self._write(segment, [view[at : at + full] for at in range(0, len(view), full)])

    def _write(self, segment: int, messages: list[memoryview]) -> int:
        """Open a verified segment's ciphertext ``messages`` (in order) and write their plaintext."""
        first = segment * self.manifest.segment_size // self._full
        plain = [
            self._cipher.open(i, message, last=i == self._messages - 1)
            for i, message in zip(range(first, first + len(messages)), messages, strict=True)
        ]
        offset = first * self.manifest.encryption.message_size
        size = sum(len(p) for p in plain)
        done = 0
        while done < size:  # pwritev may write less than asked (a signal, a full disk raises)
            done += os.pwritev(self._fd, _rest(plain, done), offset + done)
        with self._lock:
            if segment not in self._done:
                self._done.add(segment)
                self.written += size
        return size

    def missing(self) -> list[int]:
        """Segments not written yet, in order."""
        with self._lock:
            return [s for s in range(self.manifest.segment_count) if s not in self._done]


def _rest(parts: list[bytes], skip: int) -> list[bytes | memoryview]:
    """``parts`` without their first ``skip`` bytes."""
    out: list[bytes | memoryview] = []
    for p in parts:
        if skip >= len(p):
            skip -= len(p)
            continue
        out.append(memoryview(p)[skip:] if skip else p)
        skip = 0
    return out
