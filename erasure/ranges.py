"""Verified random reads of a format-v2 dataset: a plaintext byte range from only the segments covering it.

Plaintext bytes ``[offset, offset + size)`` lie in AEAD messages ``offset // M`` to
``(offset + size - 1) // M`` (M = ``message_size``); those messages are ciphertext bytes
``[i * (M + TAG), ...)``, which lie in segments ``byte // segment_size``. Only those segments are
decoded, each from k blocks that the :class:`~erasure.decoding.Decoder` checks against their
committed Merkle roots before use; then each message is opened on its own (its position and
whether it is the last one are part of its nonce, so a block from elsewhere cannot pass).

A read that does not continue the previous one (a random read) of a segment not in the cache
reads only the systematic blocks holding its bytes (:meth:`~erasure.decoding.Decoder.segment_range`:
one block of k for a 4 KiB read, verified like any other; the whole segment from any k if that
holder is not at hand), and caches nothing. Decoded segments are kept in a bounded LRU
(``cache_segments`` of them, so memory is at most ``cache_segments * segment_size`` plus what is
in flight). A read that starts where the previous
one ended counts as sequential and starts decoding the next ``prefetch`` segments on the thread
pool, so a reader streaming a file waits on the network as little as the window allows.
Thread-safe: concurrent reads share the cache, and a segment being decoded is decoded once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from . import stream
from .decoding import Decoder, DecodeReport
from .errors import NotSeekable, ParameterError
from .manifest import Manifest
from .pipeline import ShareSource, default_threads

DEFAULT_CACHE_SEGMENTS = 16
DEFAULT_PREFETCH = 4


class RangeReader:
    """Random access to a v2 dataset's plaintext. ``close()`` (or ``with``) stops the pool."""

    def __init__(
        self,
        man: Manifest,
        key: bytes,
        sources: Mapping[int, ShareSource],
        *,
        cache_segments: int = DEFAULT_CACHE_SEGMENTS,
        prefetch: int = DEFAULT_PREFETCH,
        threads: int | None = None,
        partial_reads: bool = True,
    ) -> None:
        """``partial_reads``: a random read reads only the systematic blocks holding its bytes
        (off for a whole-file reader such as ``fetch``, which decodes every segment anyway)."""
        if not man.seekable:
            raise NotSeekable(f"manifest version {man.version} ({man.encryption.scheme}) can only be read whole")
        if cache_segments < 1 or prefetch < 0:
            raise ParameterError("cache_segments must be >= 1 and prefetch >= 0")
        self.manifest = man
        self._decoder = Decoder(man, key, sources, threads=1)
        enc = man.encryption
        self._cipher = stream.StreamCipher(key, enc.header, scheme=enc.scheme, message_size=enc.message_size)
        self._messages = stream.message_count(man.plaintext_size, enc.message_size)
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._inflight: dict[int, Future[bytes]] = {}
        self._lock = threading.Lock()
        self._capacity = max(cache_segments, prefetch + 2)
        self._prefetch = prefetch
        self._pool = ThreadPoolExecutor(threads or default_threads(), thread_name_prefix="erasure-range")
        self._next_sequential = -1
        self._partial_reads = partial_reads
        self.segments_decoded = 0
        """How many segments were decoded (each costs k verified blocks from the holders) or read
        in part (a random read: only the systematic blocks holding its bytes, each verified)."""

    @property
    def report(self) -> DecodeReport:
        return self._decoder.report

    @property
    def size(self) -> int:
        return self.manifest.plaintext_size

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decode(self, s: int) -> bytes:
        data = self._decoder.segment(s)
        with self._lock:
            self.segments_decoded += 1
            self._cache[s] = data
            self._cache.move_to_end(s)
            self._inflight.pop(s, None)
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return data

    def _future(self, s: int) -> Future[bytes]:
        """A future for segment ``s`` (from the cache, already in flight, or started now); under the lock."""
        cached = self._cache.get(s)
        if cached is not None:
            self._cache.move_to_end(s)
            done: Future[bytes] = Future()
            done.set_result(cached)
            return done
        fut = self._inflight.get(s)
        if fut is None:
            fut = self._pool.submit(self._decode, s)
            self._inflight[s] = fut
        return fut

    def segments_for(self, offset: int, size: int) -> range:
        """The segments a read of ``size`` plaintext bytes at ``offset`` needs (empty for size 0)."""
        first, last = self._message_span(offset, size)
        if first > last:
            return range(0)
        c_start, c_stop = self._cipher_span(first, last)
        seg = self.manifest.segment_size
        return range(c_start // seg, (c_stop - 1) // seg + 1)

    def _message_span(self, offset: int, size: int) -> tuple[int, int]:
        m = self.manifest.encryption.message_size
        if size == 0:
            return 0, -1
        return offset // m, (offset + size - 1) // m

    def _cipher_span(self, first: int, last: int) -> tuple[int, int]:
        full = self.manifest.encryption.message_size + stream.TAG_SIZE
        return first * full, min((last + 1) * full, self.manifest.ciphertext_size)

    def read(self, offset: int, size: int) -> bytes:
        """Plaintext bytes ``[offset, offset + size)``, clipped to the end of the dataset.

        Raises :class:`~erasure.errors.NotEnoughShares` if a covering segment has fewer than k
        good blocks, a :class:`~erasure.errors.DecryptionError` if a message does not open."""
        if offset < 0 or size < 0:
            raise ParameterError("offset and size must be >= 0")
        size = max(0, min(size, self.size - offset))
        if size == 0:
            return b""
        segments = self.segments_for(offset, size)
        first, last = self._message_span(offset, size)
        c_start, c_stop = self._cipher_span(first, last)
        seg = self.manifest.segment_size
        with self._lock:
            sequential = segments.start in (self._next_sequential, self._next_sequential - 1)
            parts: list[tuple[Future[bytes], int, int]] = []  # (bytes, then the slice of them wanted)
            for s in segments:
                a, b = max(c_start, s * seg) - s * seg, min(c_stop, (s + 1) * seg) - s * seg
                if sequential or not self._partial_reads or s in self._cache or s in self._inflight:
                    parts.append((self._future(s), a, b))
                else:  # a random read: only the systematic blocks holding these bytes
                    parts.append((self._pool.submit(self._partial, s, a, b), 0, b - a))
            if sequential:
                for s in range(segments.stop, min(segments.stop + self._prefetch, self.manifest.segment_count)):
                    self._future(s)
            self._next_sequential = segments.stop
        cipher = memoryview(b"".join(memoryview(f.result())[a:b] for f, a, b in parts))
        full = self.manifest.encryption.message_size + stream.TAG_SIZE
        plain = bytearray()
        for n, i in enumerate(range(first, last + 1)):
            plain += self._cipher.open(i, cipher[n * full : (n + 1) * full], last=i == self._messages - 1)
        skip = offset - first * self.manifest.encryption.message_size
        return bytes(plain[skip : skip + size])

    def _partial(self, s: int, start: int, stop: int) -> bytes:
        data = self._decoder.segment_range(s, start, stop)
        with self._lock:
            self.segments_decoded += 1
        return data
