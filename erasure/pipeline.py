"""Streaming encode and decode: plaintext -> encrypted segments -> blocks -> n shares, and back.

Encode reads the plaintext once, encrypts it in secretstream messages, cuts the ciphertext into
segments of ``k * block_size`` bytes, erasure-codes each segment into n blocks and appends
block i to share i. Every block is hashed into its Merkle subtree on the way, so the share roots
and the manifest come out at the end without a second pass. Memory is bounded by the window
of segments in flight, whatever the input size.

Decode takes any set of :class:`ShareSource`\\ s. It checks each share's claimed block roots
against the committed share root once, then for each segment reads blocks from good shares
(systematic ones first), checks every block against its root before it is used, skips a block
that fails (the share stays in use for other segments; an unreadable share is dropped), and
decodes from the first k good blocks; the subset may differ per segment. Fewer than k good
blocks for a segment raises :class:`NotEnoughShares`.

CPU work (codec, block hashing) runs on a thread pool: zfec, libsodium and hashlib release
the GIL, so threads use every core without copying segments between processes.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from . import envelope, merkle
from . import manifest as manifest_mod
from .codec import DEFAULT_CODEC as DEFAULT_CODEC
from .codec import Codec, get_codec
from .errors import (
    DecryptionError,
    ErasureError,
    IntegrityError,
    ManifestMismatch,
    NotEnoughShares,
    ParameterError,
)
from .manifest import Manifest

DEFAULT_K = 3
DEFAULT_N = 10
DEFAULT_BLOCK_SIZE = 256 * 1024
MAX_BLOCK_SIZE = 16 * 1024 * 1024
DEFAULT_LEAF_SIZE = merkle.DEFAULT_LEAF_SIZE
SLOW_ROUNDS = 16
"""How many times the decoder asks a source that keeps raising TimeoutError before dropping it."""

T = TypeVar("T")

Progress = Callable[[int], None]
"""Called with the number of bytes just processed (plaintext on encode and decode)."""


class ShareSink(Protocol):
    """Where one share's bytes go, in order."""

    def write(self, data: bytes, /) -> object: ...


class ShareSource(Protocol):
    """One share as the decoder sees it: untrusted until checked against the manifest."""

    def block_roots(self) -> Sequence[bytes]:
        """The share's claimed block roots (one per segment)."""
        ...

    def read_block(self, segment: int, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of the share: the block of ``segment``. May raise OSError.

        Either method may raise :class:`TimeoutError` for "not yet": the decoder asks the other
        shares meanwhile and comes back (up to :data:`SLOW_ROUNDS` times); a source that waits
        longer each time and raises another OSError once it gives up is what it expects."""
        ...


@dataclass(frozen=True, slots=True)
class Layout:
    """How a dataset is cut and coded."""

    codec: str = DEFAULT_CODEC
    k: int = DEFAULT_K
    n: int = DEFAULT_N
    block_size: int = DEFAULT_BLOCK_SIZE
    leaf_size: int = DEFAULT_LEAF_SIZE
    message_size: int = envelope.MESSAGE_SIZE

    def make_codec(self) -> Codec:
        codec = get_codec(self.codec, self.k, self.n)
        merkle.check_block_layout(self.block_size, self.leaf_size)
        if self.block_size > MAX_BLOCK_SIZE:
            raise ParameterError(f"block_size above {MAX_BLOCK_SIZE}")
        if codec.block_size(self.k * self.block_size) != self.block_size:
            raise ParameterError(f"{self.codec} cannot code {self.k} x {self.block_size} without padding")
        return codec


@dataclass(frozen=True, slots=True)
class EncodeResult:
    manifest: Manifest
    block_roots: list[list[bytes]]
    """For each share, the Merkle root of each of its blocks (what storage nodes serve to verify)."""


_MALLOC_TUNED = False


def tune_allocator() -> None:
    """Keep large buffers on glibc's heap instead of fresh mmap()s (once per process).

    Codecs allocate their output blocks afresh for every segment. With glibc's defaults each
    allocation over the mmap threshold is a new mapping, so every block is page-faulted in
    while the codec holds the GIL: measured here, ISA-L encode ran at 0.25 GB/s instead of
    2.7 GB/s and segment work did not scale over threads. Raising the mmap and trim thresholds
    lets freed blocks be reused. A no-op off glibc.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 64 << 20)
    libc.mallopt(m_trim_threshold, 128 << 20)


def default_threads() -> int:
    """Worker threads the pipeline uses when not told: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


class _Counter:
    def __init__(self, chunks: Iterable[bytes | memoryview], progress: Progress | None) -> None:
        self._chunks = chunks
        self._progress = progress
        self.total = 0

    def __iter__(self) -> Iterator[bytes | memoryview]:
        for chunk in self._chunks:
            self.total += len(chunk)
            if self._progress is not None:
                self._progress(len(chunk))
            yield chunk


def _encode_segment(codec: Codec, segment: bytes, leaf_size: int) -> tuple[list[bytes], list[bytes]]:
    blocks = codec.encode(segment)
    return blocks, [merkle.root(b, leaf_size) for b in blocks]


def _ordered(pool: ThreadPoolExecutor, tasks: Iterable[Callable[[], T]], window: int) -> Iterator[T]:
    """Run tasks on the pool, at most ``window`` at once, yielding results in order."""
    pending: deque[Future[T]] = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(task))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()


def encode(
    plaintext: Iterable[bytes | memoryview],
    sinks: Sequence[ShareSink],
    *,
    key: bytes,
    salt: bytes | None = None,
    layout: Layout = Layout(),
    name: str = "",
    content: str = "file",
    threads: int | None = None,
    progress: Progress | None = None,
) -> EncodeResult:
    """Encrypt, code and hash ``plaintext`` into ``layout.n`` share sinks; return the manifest.

    ``key`` is the 32-byte data key (see :func:`erasure.envelope.new_data_key`); it is used
    here and never stored in the manifest, which carries only its salted commitment.
    """
    tune_allocator()
    codec = layout.make_codec()
    if len(sinks) != layout.n:
        raise ParameterError(f"need {layout.n} share sinks, got {len(sinks)}")
    salt = envelope.new_salt() if salt is None else salt
    commitment = envelope.key_commitment(key, salt)
    counter = _Counter(plaintext, progress)
    header, messages = envelope.encrypt_stream(key, counter, layout.message_size)
    segment_size = layout.k * layout.block_size
    segments = envelope.rechunk(messages, segment_size)

    accumulators = [merkle.NodeAccumulator() for _ in range(layout.n)]
    roots: list[list[bytes]] = [[] for _ in range(layout.n)]
    ciphertext_size = share_size = 0
    workers = threads or default_threads()

    def tasks() -> Iterator[Callable[[], tuple[list[bytes], list[bytes]]]]:
        nonlocal ciphertext_size
        for segment in segments:
            ciphertext_size += len(segment)
            yield functools.partial(_encode_segment, codec, segment, layout.leaf_size)

    with ThreadPoolExecutor(workers, thread_name_prefix="erasure-encode") as pool:
        for result in _ordered(pool, tasks(), 2 * workers + 1):
            blocks, block_roots = result
            share_size += len(blocks[0])
            for i, (block, root) in enumerate(zip(blocks, block_roots, strict=True)):
                sinks[i].write(block)
                accumulators[i].add(root)
                roots[i].append(root)

    share_roots = [acc.root() for acc in accumulators]
    man = manifest_mod.build(
        name=name,
        content=content,
        codec=layout.codec,
        k=layout.k,
        n=layout.n,
        block_size=layout.block_size,
        leaf_size=layout.leaf_size,
        plaintext_size=counter.total,
        ciphertext_size=ciphertext_size,
        share_size=share_size,
        header=header,
        message_size=layout.message_size,
        salt=salt,
        key_commitment=commitment,
        share_roots=share_roots,
    )
    return EncodeResult(man, roots)


@dataclass
class DecodeReport:
    """What a decode found.

    ``excluded``: shares dropped entirely (block roots rejected, or unreadable), with the reason.
    ``bad_blocks``: blocks that failed verification, by share, as (segment, reason); the rest of
    such a share is still used, each block being checked on its own.
    ``blocks_used``: verified blocks taken from each share.
    ``timeouts``: how often each share answered "not yet" (TimeoutError) and was asked again later.
    """

    excluded: dict[int, str] = field(default_factory=dict)
    bad_blocks: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    blocks_used: dict[int, int] = field(default_factory=dict)
    timeouts: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

    def _segment(self, s: int) -> bytes:
        man = self.manifest
        seg_len = man.segment_len(s)
        size = self._codec.block_size(seg_len)
        offset = man.block_offset(s)
        good: dict[int, bytes] = {}
        with self._admitting:
            candidates = list(self._sources)  # in the caller's order of preference (fastest first)
        tried: set[int] = set()
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

    def ciphertext(self) -> Iterator[bytes]:
        """Verified ciphertext segments, in order."""
        count = self.manifest.segment_count
        with ThreadPoolExecutor(self._threads, thread_name_prefix="erasure-decode") as pool:
            tasks = (functools.partial(self._segment, s) for s in range(count))
            yield from _ordered(pool, tasks, 2 * self._threads + 1)

    def __iter__(self) -> Iterator[bytes]:
        if self._key is None:
            raise ParameterError("this decoder has no data key: only ciphertext() is available")
        man = self.manifest
        for chunk in envelope.decrypt_stream(
            self._key, man.encryption.header, self.ciphertext(), man.encryption.message_size
        ):
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
