"""Streaming decode: any k verified blocks per segment from a set of shares -> plaintext.

Each share's claimed block roots are checked against the committed share root once; then for
each segment blocks are read from good shares (systematic ones first), every block is checked
against its root before it is used, a block that fails is skipped (the share stays in use for
other segments; an unreadable share is dropped), and the segment is decoded from the first k good
blocks. Fewer than k good blocks for a segment raises :class:`NotEnoughShares`. The format and
the :class:`~erasure.pipeline.ShareSource` contract are in :mod:`erasure.pipeline`.

A source may also be :class:`Prefetching`: then the k blocks a segment needs are all asked for
before the first is waited on (k holders in parallel, not one after another), and a read that
raises :class:`Lagging` (a hedge: the holder is behind its class's usual latency) sends the
decoder to a spare holder at once without counting towards giving up on the laggard.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from . import envelope, merkle, stream
from .codec import Codec, get_codec
from .errors import (
    DecryptionError,
    ErasureError,
    IntegrityError,
    Lagging,
    ManifestMismatch,
    NotEnoughShares,
    ParameterError,
)
from .manifest import Manifest
from .pipeline import (
    SLOW_ROUNDS,
    Progress,
    ShareSink,
    ShareSource,
    default_threads,
    ordered_results,
    tune_allocator,
)


@runtime_checkable
class Prefetching(Protocol):
    """A :class:`~erasure.pipeline.ShareSource` that can start a block read without waiting for it."""

    def prefetch(self, segment: int, offset: int, size: int) -> None:
        """Start reading the block :meth:`read_block` will be asked for next (never raises)."""
        ...


@dataclass
class DecodeReport:
    """What a decode found.

    ``excluded``: shares dropped entirely (block roots rejected, or unreadable), with the reason.
    ``bad_blocks``: blocks that failed verification, by share, as (segment, reason); the rest of
    such a share is still used, each block being checked on its own.
    ``blocks_used``: verified blocks taken from each share.
    ``timeouts``: how often each share answered "not yet" (TimeoutError) and was asked again later.
    ``hedged``: how often a share lagged (:class:`Lagging`) and a spare holder was asked instead.
    """

    excluded: dict[int, str] = field(default_factory=dict)
    bad_blocks: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    blocks_used: dict[int, int] = field(default_factory=dict)
    timeouts: dict[int, int] = field(default_factory=dict)
    hedged: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def lagged(self, share: int) -> None:
        with self._lock:
            self.hedged[share] = self.hedged.get(share, 0) + 1

    def timed_out(self, share: int) -> None:
        with self._lock:
            self.timeouts[share] = self.timeouts.get(share, 0) + 1

    def exclude(self, share: int, reason: str) -> None:
        with self._lock:
            self.excluded.setdefault(share, reason)

    def bad_block(self, share: int, segment: int, reason: str) -> None:
        with self._lock:
            self.bad_blocks.setdefault(share, []).append((segment, reason))

    def used(self, share: int) -> None:
        with self._lock:
            self.blocks_used[share] = self.blocks_used.get(share, 0) + 1

    @property
    def suspect_shares(self) -> list[int]:
        """Shares that were excluded or served at least one bad block."""
        return sorted(set(self.excluded) | set(self.bad_blocks))


def share_size_for(man: Manifest, codec: Codec) -> int:
    last = man.segment_len(man.segment_count - 1)
    return (man.segment_count - 1) * man.block_size + codec.block_size(last)


class Decoder:
    """Verify and decode a dataset from its shares; iterate for plaintext chunks.

    ``report`` tells which shares were excluded (bad roots, corrupt or missing blocks).
    Blocks are read from ``sources`` in the mapping's order (put the fastest first): the first k
    that verify are used for each segment.
    """

    def __init__(
        self,
        man: Manifest,
        key: bytes | None,
        sources: Mapping[int, ShareSource],
        *,
        threads: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        """``key=None`` gives a ciphertext-only decoder (repair): :meth:`ciphertext` works, iterating
        for plaintext does not."""
        if key is not None and not envelope.check_key_commitment(key, man.salt, man.key_commitment):
            raise DecryptionError("data key does not match the manifest's key commitment")
        tune_allocator()
        self.manifest = man
        self._key = key
        self._codec = get_codec(man.codec, man.k, man.n)
        if share_size_for(man, self._codec) != man.share_size:
            raise ManifestMismatch("share_size does not match the codec's layout")
        self._threads = threads or default_threads()
        self._progress = progress
        self.report = DecodeReport()
        self._roots: dict[int, Sequence[bytes]] = {}
        self._late: dict[int, ShareSource] = {}  # roots not in yet (TimeoutError): admitted when needed
        self._tries: dict[int, int] = {}
        self._admitting = threading.Lock()
        self._late_lock = threading.Lock()
        for index, source in sorted(sources.items()):
            if not 0 <= index < man.n:
                raise ParameterError(f"share index {index} out of range [0, {man.n})")
            self._admit(index, source)
        self._sources = {i: s for i, s in sources.items() if i in self._roots}
        self._late = {i: s for i, s in sources.items() if i in self._late}  # in the caller's order

    def _admit(self, index: int, source: ShareSource) -> bool:
        """Check a share's block roots; False if it is late (asked again by :meth:`_admit_late`)."""
        try:
            roots = list(source.block_roots())
            if len(roots) != self.manifest.segment_count:
                raise IntegrityError(f"{len(roots)} block roots for {self.manifest.segment_count} segments")
            merkle.verify_block_roots(self.manifest.share_roots[index], roots, share=index)
        except TimeoutError as err:
            if self._slow(index, err):
                self._late[index] = source
            return False
        except (OSError, ErasureError) as err:
            self.report.exclude(index, f"block roots rejected: {err}")
            return False
        self._roots[index] = roots
        return True

    def _slow(self, index: int, err: TimeoutError) -> bool:
        """Note a "not yet"; True while the share may be asked again, else it is excluded."""
        self.report.timed_out(index)
        with self._admitting:
            self._tries[index] = tries = self._tries.get(index, 0) + 1
        if tries < SLOW_ROUNDS:
            return True
        self.report.exclude(index, f"no answer after {tries} tries: {err}")
        return False

    def _admit_late(self) -> None:
        """Ask the shares whose roots had not come in again (one thread at a time)."""
        with self._late_lock:
            with self._admitting:
                late, self._late = self._late, {}
            admitted = [i for i, source in late.items() if self._admit(i, source)]
            with self._admitting:
                for i in admitted:
                    self._sources[i] = late[i]

    def _read(self, index: int, s: int, offset: int, size: int, slow: list[int]) -> bytes | None:
        """Share ``index``'s verified block of segment ``s``, or None (noted in the report;
        appended to ``slow`` if it only answered "not yet")."""
        try:
            block = self._sources[index].read_block(s, offset, size)
        except Lagging:  # a hedge: the next holder in line is asked now, this one again if need be
            self.report.lagged(index)
            slow.append(index)
            return None
        except TimeoutError as err:  # a slow holder is not a missing one: asked again after the others
            if self._slow(index, err):
                slow.append(index)
            return None
        except OSError as err:
            self.report.exclude(index, f"segment {s}: read failed: {err}")
            return None
        if len(block) != size:
            self.report.bad_block(index, s, f"short block: {len(block)} of {size} bytes")
            return None
        if merkle.root(block, self.manifest.leaf_size) != self._roots[index][s]:
            self.report.bad_block(index, s, "block does not match its committed root")
            return None
        return block

    def _prefetch(self, candidates: list[int], s: int, offset: int, size: int) -> None:
        """Start the reads of segment ``s`` from the first k usable candidates, all at once."""
        started = 0
        for index in candidates:
            if started == self.manifest.k:
                break
            if index in self.report.excluded:
                continue
            source = self._sources[index]
            if isinstance(source, Prefetching):
                source.prefetch(s, offset, size)
            started += 1

    def _segment(self, s: int, skip: frozenset[int] = frozenset()) -> bytes:
        """Segment ``s`` from the first k good blocks (shares in ``skip`` are not asked)."""
        man = self.manifest
        seg_len = man.segment_len(s)
        size = self._codec.block_size(seg_len)
        offset = man.block_offset(s)
        good: dict[int, bytes] = {}
        with self._admitting:  # in the caller's order of preference (fastest first)
            candidates = [i for i in self._sources if i not in skip]
        tried: set[int] = set(skip)
        self._prefetch(candidates, s, offset, size)
        while True:
            slow: list[int] = []
            for index in candidates:
                if len(good) == man.k:
                    break
                tried.add(index)
                if index in self.report.excluded or index in good:
                    continue
                block = self._read(index, s, offset, size, slow)
                if block is not None:
                    good[index] = block
            if len(good) == man.k:
                break
            self._admit_late()  # then the slow ones again, and the late ones once admitted
            with self._admitting:
                fresh = [i for i in self._sources if i not in tried and i not in self.report.excluded]
                waiting = bool(self._late)
            candidates = slow + fresh
            if not candidates and not waiting:
                break
        if len(good) < man.k:
            raise NotEnoughShares(
                f"segment {s}: only {len(good)} verified blocks, need {man.k} "
                f"(suspect shares: {self.report.suspect_shares}; timed out: {sorted(self.report.timeouts)})",
                segment=s,
                good=len(good),
                needed=man.k,
            )
        for index in good:
            self.report.used(index)
        return self._codec.decode(good, seg_len)

    def segment(self, s: int) -> bytes:
        """Ciphertext segment ``s``, decoded from k blocks each checked against its root (thread-safe)."""
        return self._segment(s)

    def segment_range(self, s: int, start: int, stop: int) -> bytes:
        """Ciphertext bytes ``[start, stop)`` of segment ``s``, read from only the systematic
        blocks that hold them (blocks ``0..k-1`` are the segment cut in k; block j holds bytes
        ``[j * b, (j + 1) * b)``), each checked against its root; the whole segment is decoded
        from any k blocks instead if one of those is not at hand (excluded, lagging, bad)."""
        man = self.manifest
        seg_len = man.segment_len(s)
        if not 0 <= start < stop <= seg_len:
            raise ParameterError(f"range [{start}, {stop}) outside segment {s} of {seg_len} bytes")
        size = self._codec.block_size(seg_len)
        offset = man.block_offset(s)
        wanted = range(start // size, (stop - 1) // size + 1)
        with self._admitting:
            usable = all(j in self._sources and j not in self.report.excluded for j in wanted)
        if not usable or len(wanted) >= man.k:
            return self._segment(s)[start:stop]
        for j in wanted:
            source = self._sources[j]
            if isinstance(source, Prefetching):
                source.prefetch(s, offset, size)
        blocks: list[bytes] = []
        for j in wanted:
            block = self._read(j, s, offset, size, [])
            if block is None:  # a lagging one may still be asked; one that failed is not asked again
                bad = j in self.report.excluded or any(seg == s for seg, _ in self.report.bad_blocks.get(j, []))
                return self._segment(s, frozenset([j]) if bad else frozenset())[start:stop]
            blocks.append(block)
        for j in wanted:
            self.report.used(j)
        first = wanted.start * size
        return b"".join(blocks)[start - first : stop - first]

    def ciphertext(self) -> Iterator[bytes]:
        """Verified ciphertext segments, in order."""
        count = self.manifest.segment_count
        with ThreadPoolExecutor(self._threads, thread_name_prefix="erasure-decode") as pool:
            tasks = (functools.partial(self._segment, s) for s in range(count))
            yield from ordered_results(pool, tasks, 2 * self._threads + 1)

    def __iter__(self) -> Iterator[bytes]:
        if self._key is None:
            raise ParameterError("this decoder has no data key: only ciphertext() is available")
        man = self.manifest
        enc = man.encryption
        if man.version == 1:
            chunks = envelope.decrypt_stream(self._key, enc.header, self.ciphertext(), enc.message_size)
        else:
            chunks = stream.decrypt_stream(
                self._key, enc.header, self.ciphertext(), scheme=enc.scheme, message_size=enc.message_size
            )
        for chunk in chunks:
            if self._progress is not None:
                self._progress(len(chunk))
            yield chunk


def rebuild(
    man: Manifest,
    sources: Mapping[int, ShareSource],
    sinks: Mapping[int, ShareSink],
    *,
    threads: int | None = None,
) -> DecodeReport:
    """Rebuild shares ``sinks.keys()`` from any k good ones, without the data key (ciphertext only).

    Each segment is decoded from k verified blocks and encoded again; the codecs are deterministic,
    so the rebuilt share is the original byte for byte. Its root is checked against the manifest
    before returning: :class:`IntegrityError` if it differs (nothing rebuilt is then trustworthy).
    """
    codec = get_codec(man.codec, man.k, man.n)
    for index in sinks:
        if not 0 <= index < man.n:
            raise ParameterError(f"share index {index} out of range [0, {man.n})")
    decoder = Decoder(man, None, sources, threads=threads)
    roots: dict[int, list[bytes]] = {i: [] for i in sinks}
    for segment in decoder.ciphertext():
        blocks = codec.encode(segment)
        for index, sink in sinks.items():
            sink.write(blocks[index])
            roots[index].append(merkle.root(blocks[index], man.leaf_size))
    for index, block_roots in roots.items():
        if merkle.root_of_nodes(block_roots) != man.share_roots[index]:
            raise IntegrityError(f"rebuilt share {index} does not match its committed root")
    return decoder.report


def decode(
    man: Manifest,
    key: bytes,
    sources: Mapping[int, ShareSource],
    *,
    threads: int | None = None,
    progress: Progress | None = None,
) -> Iterator[bytes]:
    """Plaintext chunks of the dataset; see :class:`Decoder` for what is checked."""
    return iter(Decoder(man, key, sources, threads=threads, progress=progress))


class MemoryShareSource:
    """A share held in memory (tests, repair)."""

    def __init__(self, data: bytes, block_size: int, leaf_size: int, roots: Sequence[bytes] | None = None):
        self.data = data
        self._roots = roots if roots is not None else merkle.block_roots(data, block_size, leaf_size)

    def block_roots(self) -> Sequence[bytes]:
        return self._roots

    def read_block(self, segment: int, offset: int, size: int) -> bytes:
        block = self.data[offset : offset + size]
        if len(block) != size:
            raise OSError(f"share truncated at segment {segment}")
        return block
