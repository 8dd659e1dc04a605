"""Streaming encode and decode: plaintext -> encrypted segments -> blocks -> n shares, and back.

Encode reads the plaintext once, encrypts it in independent STREAM messages (format v2,
:mod:`erasure.stream`; v1 wrote secretstream and is still written on request), cuts the ciphertext into
segments of ``k * block_size`` bytes, erasure-codes each segment into n blocks and appends
block i to share i. Every block is hashed into its Merkle subtree on the way, so the share roots
and the manifest come out at the end without a second pass. Memory is bounded by the window
of segments in flight, whatever the input size.

Decode (:mod:`erasure.decoding`) takes any set of :class:`ShareSource`\\ s. It checks each share's claimed block roots
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
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from . import envelope, merkle, stream
from . import manifest as manifest_mod
from .codec import DEFAULT_CODEC as DEFAULT_CODEC
from .codec import Codec, get_codec
from .errors import ErasureError, ParameterError
from .manifest import Manifest, Span

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
    message_size: int = stream.MESSAGE_SIZE
    """Plaintext bytes per AEAD message; the default makes 64 KiB ciphertext messages, so that
    ``k * block_size`` holds a whole number of them (the default segment holds 12)."""
    version: int = manifest_mod.VERSION
    """Manifest format to write: 2 (seekable STREAM) or 1 (secretstream, for compatibility tests)."""
    scheme: str | None = None
    """Version 2's AEAD; None chooses by measurement (:func:`erasure.stream.choose_scheme`)."""

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


def ordered_results(pool: ThreadPoolExecutor, tasks: Iterable[Callable[[], T]], window: int) -> Iterator[T]:
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


def preferred_codec(k: int, n: int, *, block_size: int = DEFAULT_BLOCK_SIZE) -> str:
    """ISA-L where it is installed and codes this layout, else zfec (both stay readable)."""
    try:
        Layout(codec="isal", k=k, n=n, block_size=block_size).make_codec()
    except ErasureError:
        return "zfec"
    return "isal"


def planned_share_size(plaintext_size: int, layout: Layout = Layout()) -> int:
    """Bytes in each share of a version-2 encoding of ``plaintext_size`` bytes, before encoding."""
    if layout.version != 2:
        raise ParameterError("share sizes are planned for format version 2 only")
    codec = layout.make_codec()
    ciphertext = stream.ciphertext_size(plaintext_size, layout.message_size)
    segment = layout.k * layout.block_size
    full, rest = divmod(ciphertext, segment)
    return full * layout.block_size + (codec.block_size(rest) if rest else 0)


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
    index: Callable[[], Span] | None = None,
    header: bytes | None = None,
) -> EncodeResult:
    """Encrypt, code and hash ``plaintext`` into ``layout.n`` share sinks; return the manifest.

    ``key`` is the 32-byte data key (see :func:`erasure.envelope.new_data_key`); it is used
    here and never stored in the manifest, which carries only its salted commitment.
    ``index`` (folders, ``content="folder"``) is called once the plaintext is consumed and says
    where the file index lies in it (:class:`erasure.folderpack.FolderPack` provides both).
    ``header`` (version 2 only) reuses a stream header: with the same key, salt, scheme and
    plaintext, the shares come out byte-identical (a streaming publisher rebuilds one that way).

    The sinks are written from this thread, share by share for each segment in order; a sink that
    blocks (a bounded queue in front of an upload) holds the whole pipeline back, which is what
    bounds memory when shares are sent while they are encoded (:func:`planned_share_size` tells their size
    before any byte is encoded).
    """
    tune_allocator()
    codec = layout.make_codec()
    if len(sinks) != layout.n:
        raise ParameterError(f"need {layout.n} share sinks, got {len(sinks)}")
    salt = envelope.new_salt() if salt is None else salt
    commitment = envelope.key_commitment(key, salt)
    counter = _Counter(plaintext, progress)
    if layout.version == 1:
        scheme = envelope.SCHEME
        header, messages = envelope.encrypt_stream(key, counter, layout.message_size)
    else:
        scheme = layout.scheme or stream.choose_scheme()
        header, messages = stream.encrypt_stream(
            key, counter, scheme=scheme, message_size=layout.message_size, header=header
        )
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
        for result in ordered_results(pool, tasks(), 2 * workers + 1):
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
        scheme=scheme,
        version=layout.version,
        index=None if index is None else index(),
    )
    return EncodeResult(man, roots)
