"""Share files on disk: crash-safe writes, verified reads, quarantine, quota, garbage collection.

Layout under the node's home::

    shares/<dataset>/<index>.share   the share bytes exactly as committed
    shares/<dataset>/<index>.roots   its block roots (32 bytes per block), checked against the root
    shares/<dataset>/manifest.json   the dataset's manifest (its tagged hash is the dataset id)
    tmp/<random>.part                uploads in progress (removed on restart)
    quarantine/                      shares found corrupted on disk, kept for inspection
    index.sqlite                     metadata (see index.py)

An upload streams into ``tmp/``, hashed block by block on the way (off the event loop); at the end
its size and Merkle root must equal what the storage order declared, then it is fsynced, renamed into
place, the directory fsynced, and only then indexed. A crash at any point leaves either the whole
share indexed or nothing visible: :meth:`ShareStore.recover` removes partial files and orphans.
Reads verify every block they serve against the stored block roots; a mismatch quarantines the share.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import re
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from erasure import manifest, merkle
from erasure.errors import ErasureError, ParameterError

from ..errors import (
    BadLayout,
    BadManifest,
    CorruptShare,
    DiskFull,
    QuotaExceeded,
    Replayed,
    ShareExists,
    ShareNotFound,
    UploadMismatch,
)
from .index import Index, ShareRecord

T = TypeVar("T")
DATASET_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_SHARES = 256
FLUSH = 1 << 20  # bytes received before a worker-thread call writes and hashes them
READ_BATCH = 4 << 20  # bytes read and verified per worker-thread call
DIGEST_CACHE_BYTES = 64 << 20  # leaf digests of verified blocks kept for small reads (covers ~2 GiB)
ROOTS_CACHE = 4096
RECORDS_CACHE = 65536  # shares whose verified block roots stay in memory (32 B per block each)


def check_address(dataset: str, idx: int) -> None:
    """Dataset ids are 64 lowercase hex characters, share indices 0..255: nothing else reaches a path."""
    if not DATASET_RE.fullmatch(dataset):
        raise ShareNotFound(f"invalid dataset id {dataset[:80]!r}")
    if not 0 <= idx < MAX_SHARES:
        raise ShareNotFound(f"invalid share index {idx}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ShareStore:
    def __init__(self, home: Path, *, capacity: int) -> None:
        self.home = home
        self.capacity = capacity
        self.shares_dir = home / "shares"
        self.tmp_dir = home / "tmp"
        self.quarantine_dir = home / "quarantine"
        for d in (self.shares_dir, self.tmp_dir, self.quarantine_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.index = Index(home / "index.sqlite")
        self._lock = threading.Lock()  # serialises index access across worker threads
        self._reserved = 0
        self._active: set[tuple[str, int]] = set()
        self._roots_cache: dict[tuple[str, int], list[bytes]] = {}
        self._records: dict[tuple[str, int], ShareRecord] = {}  # only "ok" shares; dropped on any change
        self._digests: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()  # verified leaf digests
        self._digest_bytes = 0
        self._begin_lock = asyncio.Lock()
        self.corruptions = self.index.corruptions()  # kept in the index: survives restarts

    # ------------------------------------------------------------------ paths ----

    def share_path(self, dataset: str, idx: int) -> Path:
        return self.shares_dir / dataset / f"{idx:03d}.share"

    def roots_path(self, dataset: str, idx: int) -> Path:
        return self.shares_dir / dataset / f"{idx:03d}.roots"

    # ------------------------------------------------------------- bookkeeping ----

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        def call() -> T:
            with self._lock:
                return fn(*args)

        return await asyncio.to_thread(call)

    async def used(self) -> int:
        return await self._db(self.index.used_bytes)

    async def free(self) -> int:
        """Bytes an upload may still take: the smaller of the configured capacity left and the
        disk's own free space, less what uploads in progress have reserved."""

        def measure() -> tuple[int, int]:
            with self._lock:
                used = self.index.used_bytes()
            return used, shutil.disk_usage(self.home).free

        used, disk = await asyncio.to_thread(measure)
        return min(self.capacity - used, disk) - self._reserved

    async def get(self, dataset: str, idx: int) -> ShareRecord:
        check_address(dataset, idx)
        record = self._records.get((dataset, idx))  # served shares are looked up without a thread hop
        if record is None:
            record = await self._db(self.index.get, dataset, idx)
            if record is None or record.state != "ok":
                raise ShareNotFound(f"no share {dataset}/{idx}")
            if len(self._records) >= RECORDS_CACHE:
                self._records.pop(next(iter(self._records)))
            self._records[(dataset, idx)] = record
        return record

    async def use_nonce(self, signer: str, nonce: str, expires_at: float) -> None:
        """Record an order's nonce; raises Replayed if the signer used it before."""
        await self._db(self.index.use_nonce, signer, nonce, expires_at)

    async def check_nonce(self, signer: str, nonce: str) -> None:
        """Raise Replayed if the signer used this nonce before (a read: :meth:`use_nonce` records it)."""
        if await self._db(self.index.nonce_used, signer, nonce):
            raise Replayed(f"nonce {nonce} already used by {signer}")

    async def records(self) -> list[ShareRecord]:
        return await self._db(self.index.all)

    def recover(self) -> dict[str, int]:
        """After a restart: drop partial uploads and share files the index does not know."""
        removed_parts = 0
        for part in self.tmp_dir.glob("*.part"):
            part.unlink(missing_ok=True)
            removed_parts += 1
        known = {(r.dataset, r.idx) for r in self.index.all()}
        orphans = 0
        for path in self.shares_dir.glob("*/*.share"):
            key = (path.parent.name, int(path.stem)) if path.stem.isdigit() else None
            if key not in known:
                path.unlink(missing_ok=True)
                path.with_suffix(".roots").unlink(missing_ok=True)
                orphans += 1
        missing = 0
        for r in self.index.all():
            if r.state == "ok" and not self.share_path(r.dataset, r.idx).exists():
                self.index.remove(r.dataset, r.idx)
                missing += 1
        return {"partial_uploads": removed_parts, "orphans": orphans, "missing": missing}

    # ---------------------------------------------------------------- uploads ----

    async def begin(
        self,
        dataset: str,
        idx: int,
        *,
        root: bytes,
        size: int,
        leaf_size: int,
        block_size: int,
        deal_id: int = 0,
        expires_at: float = 0.0,
        owner: str = "",
        share_proof: tuple[bytes, ...] = (),
    ) -> Upload:
        """Reserve space and start an upload; raises before any byte is written."""
        check_address(dataset, idx)
        try:
            merkle.check_block_layout(block_size, leaf_size)
        except ParameterError as err:
            raise BadLayout(str(err)) from err
        if size < 1:
            raise UploadMismatch("empty share")
        key = (dataset, idx)
        async with self._begin_lock:  # check and reserve as one step: concurrent uploads cannot both pass
            held = await self._db(self.index.get, dataset, idx)
            if key in self._active or (held is not None and held.state == "ok"):
                raise ShareExists(f"share {dataset}/{idx} already stored or being uploaded")
            # a quarantined share is replaced by a valid upload (its owner's, or the repair agent's)
            free = await self.free()
            if free < size:
                raise QuotaExceeded(f"{size} bytes do not fit: {free} free of {self.capacity}")
            self._reserved += size
            self._active.add(key)
        record = ShareRecord(
            dataset, idx, root, size, leaf_size, block_size, deal_id, "ok", 0.0, expires_at, owner, share_proof
        )
        part = self.tmp_dir / f"{secrets.token_hex(8)}.part"
        opening = asyncio.ensure_future(asyncio.to_thread(part.open, "wb"))
        try:
            file = await asyncio.shield(opening)
        except BaseException:  # cancelled or failed: the file may still be opened in the thread
            self._release(record)
            with contextlib.suppress(Exception):
                (await opening).close()
                part.unlink(missing_ok=True)
            raise
        return Upload(self, record, part, file)

    def _release(self, record: ShareRecord) -> None:
        self._reserved -= record.size
        self._active.discard((record.dataset, record.idx))

    # ------------------------------------------------------------------ reads ----

    def _forget(self, dataset: str, idx: int) -> None:
        self._records.pop((dataset, idx), None)
        for key in [k for k in self._digests if k[:2] == (dataset, idx)]:
            self._digest_bytes -= len(self._digests.pop(key))

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

    # --------------------------------------------------------------- manifests ----

    def manifest_path(self, dataset: str) -> Path:
        return self.shares_dir / dataset / "manifest.json"

    async def put_manifest(self, dataset: str, raw: bytes) -> None:
        """Keep a dataset's manifest next to its shares (content-addressed: its hash is the id).

        Accepted only for a dataset this node holds a share of, so nobody can fill the disk with
        manifests; a manifest already stored is left as it is."""
        check_address(dataset, 0)
        try:
            man = manifest.parse(raw)
        except ErasureError as err:
            raise BadManifest(f"malformed manifest: {err}") from err
        if man.hash().hex() != dataset:
            raise BadManifest("the manifest does not hash to the dataset id")
        held = [r for r in await self.records() if r.dataset == dataset and r.state == "ok"]
        if not held:
            raise ShareNotFound(f"no share of {dataset} is stored here")
        if any(man.share_roots[r.idx] != r.root for r in held if r.idx < man.n):
            raise BadManifest("the manifest's share roots differ from the shares stored here")
        path = self.manifest_path(dataset)
        if path.exists():
            return

        def write() -> None:
            part = self.tmp_dir / f"{secrets.token_hex(8)}.manifest.part"
            with part.open("wb") as f:
                f.write(man.canonical_bytes())
                f.flush()
                os.fsync(f.fileno())
            os.replace(part, path)
            _fsync_dir(path.parent)

        await asyncio.to_thread(write)

    async def get_manifest(self, dataset: str) -> bytes:
        check_address(dataset, 0)
        try:
            return await asyncio.to_thread(self.manifest_path(dataset).read_bytes)
        except FileNotFoundError as err:
            raise ShareNotFound(f"no manifest for {dataset}") from err

    # ------------------------------------------------------------------ removal ----

    async def delete(self, dataset: str, idx: int) -> None:
        record = await self.get(dataset, idx)
        self._roots_cache.pop((dataset, idx), None)
        self._forget(dataset, idx)

        def remove() -> None:
            with self._lock:
                self.index.remove(record.dataset, record.idx)
            self.share_path(dataset, idx).unlink(missing_ok=True)
            self.roots_path(dataset, idx).unlink(missing_ok=True)
            if not any(p.suffix == ".share" for p in self.share_path(dataset, idx).parent.iterdir()):
                self.manifest_path(dataset).unlink(missing_ok=True)  # its last share is gone

        await asyncio.to_thread(remove)

    async def collect_garbage(self, now: float | None = None) -> int:
        """Delete shares whose storage term has ended; returns how many."""
        expired = await self._db(self.index.expired, now if now is not None else time.time())
        for r in expired:
            await self.delete(r.dataset, r.idx)
        await self._db(self.index.forget_nonces)
        return len(expired)

    def close(self) -> None:
        self.index.close()


@contextlib.contextmanager
def _disk_full_is_507() -> Iterator[None]:
    """The disk (or the operator's quota on it) ran out: :class:`DiskFull`, not an internal error."""
    try:
        yield
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"the disk is full: {err.strerror}") from err
        raise


class Upload:
    """One share being received: ``await write(chunk)`` ... ``await commit()`` (or ``abort()``)."""

    def __init__(self, store: ShareStore, record: ShareRecord, part: Path, file: BinaryIO) -> None:
        self.store = store
        self.record = record
        self.received = 0
        self._part = part
        self._file = file
        self._buffer = bytearray()
        self._block = bytearray()
        self._roots: list[bytes] = []
        self._done = False
        self._released = False
        self._absorbing: asyncio.Future[None] | None = None

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self.store._release(self.record)

    async def write(self, chunk: bytes) -> None:
        if self.received + len(chunk) > self.record.size:
            await self.abort()
            raise UploadMismatch(f"more than the declared {self.record.size} bytes")
        self.received += len(chunk)
        self._buffer += chunk
        if len(self._buffer) >= FLUSH:
            data, self._buffer = bytes(self._buffer), bytearray()
            with _disk_full_is_507():
                await self._drain()  # at most one batch being written and hashed while the next arrives
            self._absorbing = asyncio.ensure_future(asyncio.to_thread(self._absorb, data))

    async def _drain(self) -> None:
        if self._absorbing is not None:
            pending, self._absorbing = self._absorbing, None
            await pending

    def _absorb(self, data: bytes) -> None:
        """Write to the part file and hash whole blocks (runs in a worker thread)."""
        self._file.write(data)
        self._block += data
        size = self.record.block_size
        if len(self._block) >= size:
            view = memoryview(self._block)
            cut = len(self._block) - len(self._block) % size
            for i in range(0, cut, size):
                self._roots.append(merkle.root(view[i : i + size], self.record.leaf_size))
            view.release()
            del self._block[:cut]

    def _finish(self) -> bytes:
        if self._block:
            self._roots.append(merkle.root(bytes(self._block), self.record.leaf_size))
            self._block.clear()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return merkle.root_of_nodes(self._roots)

    async def commit(self) -> ShareRecord:
        """Check size and root; make the share visible atomically."""
        r = self.record
        try:
            if self.received != r.size:
                raise UploadMismatch(f"received {self.received} of {r.size} declared bytes")
            data, self._buffer = bytes(self._buffer), bytearray()
            with _disk_full_is_507():
                await self._drain()
                await asyncio.to_thread(self._absorb, data)
                root = await asyncio.to_thread(self._finish)
                if root != r.root:
                    raise UploadMismatch("the bytes do not hash to the declared share root")
                record = dataclasses.replace(r, state="ok", stored_at=time.time())
                await asyncio.to_thread(self._install, record)
            self._done = True
            return record
        finally:
            if not self._done:
                await self.abort()
            self._release()

    def _install(self, record: ShareRecord) -> None:
        store = self.store
        final = store.share_path(record.dataset, record.idx)
        final.parent.mkdir(parents=True, exist_ok=True)
        roots_tmp = self._part.with_suffix(".roots.part")
        with roots_tmp.open("wb") as f:
            f.write(b"".join(self._roots))
            f.flush()
            os.fsync(f.fileno())
        os.replace(roots_tmp, store.roots_path(record.dataset, record.idx))
        os.replace(self._part, final)
        _fsync_dir(final.parent)
        with store._lock:
            store.index.add(record)

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(Exception):  # the file is going away: only wait for the writer to stop
            await self._drain()

        def cleanup() -> None:
            if not self._file.closed:
                self._file.close()
            self._part.unlink(missing_ok=True)
            self._part.with_suffix(".roots.part").unlink(missing_ok=True)

        await asyncio.to_thread(cleanup)
        self._release()


def wipe(home: Path) -> None:
    """Remove a store entirely (tests, `node reset`)."""
    shutil.rmtree(home, ignore_errors=True)
