"""Verified reads: every block served is checked against the share's stored block roots (kept in
memory once checked), small ranges are served from verified leaf digests, storage proofs are built
from verified leaves, and a mismatch quarantines the share (:class:`CorruptShare`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from erasure import merkle

from ..errors import (
    CorruptShare,
    ShareNotFound,
)
from .at_rest import REVERIFY_AFTER
from .index import ShareRecord
from .layout import (
    DIGEST_CACHE_BYTES,
    READ_BATCH,
    ROOTS_CACHE,
    StoreBase,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

OPEN_FILES = 64  # share files kept open for small reads on the event loop
VERIFY_AHEAD = 2  # batches of READ_BATCH bytes verified at once ahead of a sendfile download
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)

try:  # the C core's leaf digests in one call (a MerkleTree would also build the levels above)
    from erasure._merkle import leaf_digests as _leaf_digests
except ImportError:  # not built: the same digests in Python

    def _leaf_digests(data: Buffer, leaf_size: int, threads: int = 1, /) -> bytes:
        return merkle.MerkleTree(memoryview(data), leaf_size).leaf_level


class VerifiedReads(StoreBase):
    """Reads, proofs and quarantine (mixed into :class:`~storage_node.store.shares.ShareStore`)."""

    def __init__(self, home: Path, *, capacity: int, reverify_after: float = REVERIFY_AFTER) -> None:
        super().__init__(home, capacity=capacity, reverify_after=reverify_after)
        self._fds: OrderedDict[tuple[str, int], int] = OrderedDict()  # see _open_fd

    async def block_roots(self, record: ShareRecord) -> list[bytes]:
        """The share's block roots, checked against its root once and then kept in memory."""
        key = (record.dataset, record.idx)
        cached = self._roots_cache.get(key)
        if cached is not None:
            return cached
        raw = await asyncio.to_thread(self.roots_path(record.dataset, record.idx).read_bytes)
        roots = [raw[i : i + 32] for i in range(0, len(raw), 32)]
        if not roots or merkle.root_of_nodes(roots) != record.root:
            await self.quarantine(record, "block roots do not match the share root")
        if len(self._roots_cache) >= ROOTS_CACHE:
            self._roots_cache.pop(next(iter(self._roots_cache)))
        self._roots_cache[key] = roots
        return roots

    async def read_blocks(self, record: ShareRecord, first: int, last: int) -> AsyncIterator[bytes]:
        """Verified blocks ``first..last`` (inclusive) of a share, read and hashed a few MiB per
        worker-thread call."""
        roots = await self.block_roots(record)
        path = self.share_path(record.dataset, record.idx)
        per_call = max(1, READ_BATCH // record.block_size)
        starts = list(range(first, last + 1, per_call))

        def batch(b: int) -> asyncio.Future[tuple[list[bytes], int | None]]:
            upto = min(last, b + per_call - 1)
            return asyncio.ensure_future(asyncio.to_thread(self._read_verified, path, record, b, upto, roots))

        ahead = batch(starts[0]) if starts else None
        try:
            for n in range(len(starts)):
                assert ahead is not None
                blocks, bad = await ahead
                # read and verify the next batch while this one goes out
                ahead = batch(starts[n + 1]) if n + 1 < len(starts) and bad is None else None
                for block in blocks:
                    yield block
                if bad is not None:
                    await self.quarantine(record, f"block {bad} does not match its root")
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await ahead

    async def verified_spans(
        self, record: ShareRecord, fd: int, start: int, end: int
    ) -> AsyncGenerator[tuple[int, int]]:
        """``(offset, length)`` spans covering ``[start, end)`` of the share open as ``fd``, each
        yielded only once every block it touches has matched its root: blocks verified at rest
        (:mod:`.at_rest`: checked since the file last changed, which is tested with ``fstat`` before
        each span) without reading them again, the others read from ``fd`` and checked a few MiB per
        worker-thread call, ``VERIFY_AHEAD`` batches checked while the caller sends the one before
        them; a bad block quarantines the share after the spans before it (:class:`CorruptShare`).

        For the kernel's sendfile: the caller sends the same file's bytes the check read (from the
        page cache), without copying them through Python."""
        if not 0 <= start < end <= record.size:
            raise ShareNotFound(f"range {start}-{end} outside the share")
        roots = await self.block_roots(record)
        size = record.block_size
        first, last = start // size, (end - 1) // size
        per_call = max(1, READ_BATCH // size)
        starts = iter(range(first, last + 1, per_call))
        key = (record.dataset, record.idx)
        seen = self.at_rest.lookup(key, fd)
        if seen is None or not seen.covers(first, last):
            seen = seen or self.at_rest.start(key, fd, len(roots))  # stamped before any block is read

        def batch(b: int) -> tuple[int, int, asyncio.Future[int | None] | None]:
            upto = min(last, b + per_call - 1)
            if seen is not None and seen.covers(b, upto):
                return b, upto, None  # verified at rest: the file is compared again when its turn comes
            check = asyncio.to_thread(self._check_blocks, fd, record, b, upto, roots)
            return b, upto, asyncio.ensure_future(check)

        # a window of batches being checked ahead, so that neither a worker thread's wake-up nor
        # one batch's hashing leaves the sender waiting (two cores: two batches at a time)
        ahead: deque[tuple[int, int, asyncio.Future[int | None] | None]] = deque()
        try:
            for b in itertools.islice(starts, VERIFY_AHEAD):
                ahead.append(batch(b))
            while ahead:
                b, upto, check = ahead.popleft()
                if check is None and seen is not None and seen.matches(fd):
                    bad = None
                elif check is None:  # the file changed since its blocks were checked: check them now
                    seen = None
                    bad = await asyncio.to_thread(self._check_blocks, fd, record, b, upto, roots)
                else:
                    bad = await check
                    if seen is not None:
                        seen.mark(b, upto if bad is None else bad - 1)
                if bad is None:
                    nxt = next(starts, None)
                    if nxt is not None:
                        ahead.append(batch(nxt))
                else:
                    upto = bad - 1
                if upto >= b:
                    lo, hi = max(start, b * size), min(end, (upto + 1) * size)
                    yield lo, hi - lo
                if bad is not None:
                    await self.quarantine(record, f"block {bad} does not match its root")
        finally:
            for _, _, check in ahead:
                if check is not None:
                    check.cancel()
            for _, _, check in ahead:
                if check is not None:
                    with contextlib.suppress(asyncio.CancelledError, OSError):
                        await check

    @staticmethod
    def _check_blocks(fd: int, record: ShareRecord, first: int, last: int, roots: list[bytes]) -> int | None:
        """The first of blocks first..last whose bytes in ``fd`` do not match their root, or None:
        one read of the whole batch and one call of the C core for all its block roots."""
        base = first * record.block_size
        length = min((last - first + 1) * record.block_size, record.size - base)
        buf = bytearray(length)
        got = os.preadv(fd, [buf], base)
        view = memoryview(buf)[:got]
        computed = merkle.block_roots(view, record.block_size, record.leaf_size) if got else []
        for n, b in enumerate(range(first, last + 1)):
            if n >= len(computed) or computed[n] != roots[b]:
                return b
        if got != length:  # a short file: its last block came up short and cannot have matched
            return last
        return None

    @staticmethod
    def _read_verified(
        path: Path, record: ShareRecord, first: int, last: int, roots: list[bytes]
    ) -> tuple[list[bytes], int | None]:
        """Blocks first..last up to the first bad one, and the index of that bad block (or None)."""
        out: list[bytes] = []
        with path.open("rb") as f:
            f.seek(first * record.block_size)
            for b in range(first, last + 1):
                length = min(record.block_size, record.size - b * record.block_size)
                block = f.read(length)
                if len(block) != length or merkle.root(block, record.leaf_size) != roots[b]:
                    return out, b
                out.append(block)
        return out, None

    def is_small(self, record: ShareRecord, start: int, end: int) -> bool:
        """Whether ``[start, end)`` is read leaf by leaf (:meth:`read_small`) rather than by blocks:
        at most a quarter of a block, in one block or across one block boundary."""
        return end - start <= record.block_size // 4

    async def read_range(self, record: ShareRecord, start: int, end: int) -> AsyncIterator[bytes]:
        """Verified bytes ``[start, end)`` of a share, block by block (small reads leaf by leaf)."""
        if not 0 <= start < end <= record.size:
            raise ShareNotFound(f"range {start}-{end} outside the share")
        if self.is_small(record, start, end):
            yield await self.read_small(record, start, end)
            return
        first, last = start // record.block_size, (end - 1) // record.block_size
        b = first
        async for block in self.read_blocks(record, first, last):
            base = b * record.block_size
            yield block[max(0, start - base) : min(len(block), end - base)]
            b += 1

    async def read_small(self, record: ShareRecord, start: int, end: int) -> bytes:
        """Verified bytes ``[start, end)`` of a small range (see :meth:`is_small`), in one piece."""
        if not 0 <= start < end <= record.size:
            raise ShareNotFound(f"range {start}-{end} outside the share")
        size = record.block_size
        first, last = start // size, (end - 1) // size
        if first == last:
            return await self._read_small(record, first, start, end)
        cut = last * size  # a boundary inside the range: each block's part checked against its own digests
        return await self._read_small(record, first, start, cut) + await self._read_small(record, last, cut, end)

    async def _read_small(self, record: ShareRecord, b: int, start: int, end: int) -> bytes:
        """A small range inside block ``b``, checked leaf by leaf against the block's leaf digests.

        The first read of a block verifies the whole block against its root and keeps its leaf
        digests (32 bytes per leaf, 3% of the block) in memory; later reads of that block read and
        hash only the leaves they touch, from the page cache on the event loop when they are there
        (through a cached open descriptor), else in a worker thread."""
        roots = self._roots_cache.get((record.dataset, record.idx)) or await self.block_roots(record)
        key = (record.dataset, record.idx, b)
        digests = self._digests.get(key)
        cached = self._small_from_page_cache(record, b, start, end, digests) if digests else None
        data: bytes | None
        fresh: bytes | None
        if cached is not None:  # served from the page cache without leaving the loop
            self._digests.move_to_end(key)
            return cached
        path = self.share_path(record.dataset, record.idx)
        data, fresh = await asyncio.to_thread(self._small_verified, path, record, b, start, end, roots, digests)
        if data is None:
            self._digests.pop(key, None)
            await self.quarantine(record, f"block {b} does not match its root")
            raise AssertionError("unreachable")  # quarantine raises
        if fresh is not None:
            self._digests[key] = fresh
            self._digest_bytes += len(fresh)
            while self._digest_bytes > DIGEST_CACHE_BYTES:
                _, dropped = self._digests.popitem(last=False)
                self._digest_bytes -= len(dropped)
        elif key in self._digests:
            self._digests.move_to_end(key)
        return data

    def _open_fd(self, record: ShareRecord) -> int | None:
        """A read-only descriptor of the share's file, kept open (LRU, at most ``OPEN_FILES``) for
        reads on the event loop only: closed by :meth:`_forget` (quarantine, deletion), so it never
        outlives the file it was opened on, and never used by a worker thread (no close-under-read)."""
        key = (record.dataset, record.idx)
        fds = self._fds
        fd = fds.get(key)
        if fd is not None:
            fds.move_to_end(key)
            return fd
        try:
            fd = os.open(self.share_path(record.dataset, record.idx), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        fds[key] = fd
        while len(fds) > OPEN_FILES:
            os.close(fds.popitem(last=False)[1])
        return fd

    def _forget(self, dataset: str, idx: int) -> None:
        super()._forget(dataset, idx)
        fd = self._fds.pop((dataset, idx), None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        super().close()

    def _small_from_page_cache(
        self, record: ShareRecord, b: int, start: int, end: int, digests: bytes | None
    ) -> bytes | None:
        """The leaves of a small read if they are all in the page cache (``RWF_NOWAIT``: never
        waits for the disk) and match their digests; else None (the caller reads in a thread)."""
        if _NOWAIT is None or digests is None:
            return None
        base, leaf = b * record.block_size, record.leaf_size
        lo, hi = (start - base) // leaf, (end - base - 1) // leaf
        length = min((hi - lo + 1) * leaf, record.size - base - lo * leaf)
        fd = self._open_fd(record)
        if fd is None:
            return None
        buf = bytearray(length)
        try:
            got = os.preadv(fd, [buf], base + lo * leaf, _NOWAIT)
        except OSError:  # EAGAIN: not cached; EOPNOTSUPP: filesystem without RWF_NOWAIT
            return None
        if got != length:
            return None
        # all the touched leaves hashed in one call (the C core's SIMD lanes), compared at once
        if _leaf_digests(buf, leaf) != digests[lo * merkle.HASH_SIZE : (hi + 1) * merkle.HASH_SIZE]:
            return None  # let the thread path re-read and, if still wrong, quarantine
        offset = start - base - lo * leaf
        return bytes(buf[offset : offset + end - start])

    @staticmethod
    def _small_verified(
        path: Path,
        record: ShareRecord,
        b: int,
        start: int,
        end: int,
        roots: list[bytes],
        digests: bytes | None,
    ) -> tuple[bytes | None, bytes | None]:
        """(the bytes, or None if they do not verify; leaf digests if the whole block was read)."""
        base, leaf = b * record.block_size, record.leaf_size
        with path.open("rb") as f:
            if digests is None:
                f.seek(base)
                block = f.read(min(record.block_size, record.size - base))
                tree = merkle.MerkleTree(block, leaf)
                if tree.root != roots[b]:
                    return None, None
                return block[start - base : end - base], tree.leaf_level
            lo, hi = (start - base) // leaf, (end - base - 1) // leaf
            f.seek(base + lo * leaf)
            span = f.read((hi - lo + 1) * leaf)
        for i in range(lo, hi + 1):
            piece = span[(i - lo) * leaf : (i - lo + 1) * leaf]
            if not piece or merkle.leaf_hash(piece) != digests[i * merkle.HASH_SIZE : (i + 1) * merkle.HASH_SIZE]:
                return None, None
        offset = start - base - lo * leaf
        return span[offset : offset + end - start], None

    async def prove(self, record: ShareRecord, leaf: int) -> tuple[bytes, merkle.MerkleProof]:
        """The leaf's bytes and its proof to the share root, from one verified block."""
        leaf_count = max(1, -(-record.size // record.leaf_size))
        if not 0 <= leaf < leaf_count:
            raise ShareNotFound(f"leaf {leaf} out of range [0, {leaf_count})")
        per_block = record.block_size // record.leaf_size
        b = leaf // per_block
        block = b""
        async for piece in self.read_blocks(record, b, b):
            block = piece
        roots = await self.block_roots(record)
        inner = merkle.MerkleTree(block, record.leaf_size).prove(leaf - b * per_block)
        proof = merkle.MerkleProof(leaf, leaf_count, inner.siblings + merkle.node_proof(roots, b))
        offset = (leaf - b * per_block) * record.leaf_size
        return block[offset : offset + record.leaf_size], proof

    async def quarantine(self, record: ShareRecord, reason: str) -> None:
        """Move a corrupted share aside and stop serving it; raises :class:`CorruptShare`."""
        self._roots_cache.pop((record.dataset, record.idx), None)
        self._forget(record.dataset, record.idx)
        stamp = int(time.time() * 1000)
        target = self.quarantine_dir / f"{record.dataset}-{record.idx:03d}-{stamp}"

        def move() -> None:
            with self._lock:
                self.index.set_state(record.dataset, record.idx, "quarantined")
                self.corruptions = self.index.count_corruption()
            for suffix in (".share", ".roots"):
                src = self.share_path(record.dataset, record.idx).with_suffix(suffix)
                if src.exists():
                    os.replace(src, target.with_suffix(suffix))

        await asyncio.to_thread(move)
        raise CorruptShare(f"share {record.dataset}/{record.idx} is corrupted on disk ({reason}); quarantined")
