"""Verified reads: every block served is checked against the share's stored block roots (kept in
memory once checked), small ranges are served from verified leaf digests, storage proofs are built
from verified leaves, and a mismatch quarantines the share (:class:`CorruptShare`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from erasure import merkle

from ..errors import (
    CorruptShare,
    ShareNotFound,
)
from .index import ShareRecord
from .layout import (
    DIGEST_CACHE_BYTES,
    READ_BATCH,
    ROOTS_CACHE,
    StoreBase,
)


class VerifiedReads(StoreBase):
    """Reads, proofs and quarantine (mixed into :class:`~storage_node.store.shares.ShareStore`)."""

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

    async def read_range(self, record: ShareRecord, start: int, end: int) -> AsyncIterator[bytes]:
        """Verified bytes ``[start, end)`` of a share, block by block (small reads leaf by leaf)."""
        if not 0 <= start < end <= record.size:
            raise ShareNotFound(f"range {start}-{end} outside the share")
        first, last = start // record.block_size, (end - 1) // record.block_size
        if first == last and end - start <= record.block_size // 4:
            yield await self._read_small(record, first, start, end)
            return
        b = first
        async for block in self.read_blocks(record, first, last):
            base = b * record.block_size
            yield block[max(0, start - base) : min(len(block), end - base)]
            b += 1

    async def _read_small(self, record: ShareRecord, b: int, start: int, end: int) -> bytes:
        """A small range inside block ``b``, checked leaf by leaf against the block's leaf digests.

        The first read of a block verifies the whole block against its root and keeps its leaf
        digests (32 bytes per leaf, 3% of the block) in memory; later reads of that block read and
        hash only the leaves they touch."""
        roots = await self.block_roots(record)
        key = (record.dataset, record.idx, b)
        digests = self._digests.get(key)
        path = self.share_path(record.dataset, record.idx)
        cached = self._small_from_page_cache(path, record, b, start, end, digests) if digests else None
        data: bytes | None
        fresh: bytes | None
        if cached is not None:  # served from the page cache without leaving the loop
            data, fresh = cached, None
        else:
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
        else:
            self._digests.move_to_end(key)
        return data

    @staticmethod
    def _small_from_page_cache(
        path: Path, record: ShareRecord, b: int, start: int, end: int, digests: bytes | None
    ) -> bytes | None:
        """The leaves of a small read if they are all in the page cache (``RWF_NOWAIT``: never
        waits for the disk) and match their digests; else None (the caller reads in a thread)."""
        nowait = getattr(os, "RWF_NOWAIT", None)
        if nowait is None or digests is None:
            return None
        base, leaf = b * record.block_size, record.leaf_size
        lo, hi = (start - base) // leaf, (end - base - 1) // leaf
        length = min((hi - lo + 1) * leaf, record.size - base - lo * leaf)
        buf = bytearray(length)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            got = os.preadv(fd, [buf], base + lo * leaf, nowait)
        except OSError:  # EAGAIN: not cached; EOPNOTSUPP: filesystem without RWF_NOWAIT
            return None
        finally:
            os.close(fd)
        if got != length:
            return None
        for i in range(lo, hi + 1):
            piece = buf[(i - lo) * leaf : (i - lo + 1) * leaf]
            if merkle.leaf_hash(piece) != digests[i * merkle.HASH_SIZE : (i + 1) * merkle.HASH_SIZE]:
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
