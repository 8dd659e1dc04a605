"""Uploads and recovery: a share streams into ``tmp/``, hashed block by block off the event loop; at the
end its size and Merkle root must equal what the storage order declared, then it is fsynced, renamed
into place, the directory fsynced, and only then indexed. :meth:`Uploads.recover` (at start) removes
partial files and orphans left by a crash, so either the whole share is indexed or nothing is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from erasure import merkle
from erasure.errors import ParameterError

from ..errors import (
    BadLayout,
    DiskFull,
    QuotaExceeded,
    ShareExists,
    UploadMismatch,
)
from .at_rest import Identity, identity, stamp
from .direct import ShareWriter
from .index import ShareRecord
from .layout import (
    FLUSH,
    StoreBase,
    _fsync_dir,
    check_address,
)


class Uploads(StoreBase):
    """Reserving and receiving shares; recovery after a crash (mixed into ``ShareStore``)."""

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
        pending: bool = False,
    ) -> Upload:
        """Reserve space and start an upload; raises before any byte is written.

        ``pending`` (see :mod:`.pending`): ``dataset`` is a pending key, the root is not known yet and
        the upload ends held, not indexed."""
        if not pending:
            check_address(dataset, idx)
        try:
            merkle.check_block_layout(block_size, leaf_size)
        except ParameterError as err:
            raise BadLayout(str(err)) from err
        if size < 1:
            raise UploadMismatch("empty share")
        key = (dataset, idx)
        async with self._begin_lock:  # check and reserve as one step: concurrent uploads cannot both pass
            held = None if pending else await self._db(self.index.get, dataset, idx)
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
        opening = asyncio.ensure_future(asyncio.to_thread(ShareWriter, part))  # past the page cache
        try:
            file = await asyncio.shield(opening)
        except BaseException:  # cancelled or failed: the file may still be opened in the thread
            self._release(record)
            with contextlib.suppress(Exception):
                (await opening).close()
                part.unlink(missing_ok=True)
            raise
        return Upload(self, record, part, file, pending=pending)

    def _release(self, record: ShareRecord) -> None:
        self._reserved -= record.size
        self._active.discard((record.dataset, record.idx))


def unchanged_since(stamped: os.stat_result | None, path: Path) -> Identity | None:
    """The identity of the file at ``path`` now, if it is the stamped one and unwritten since (only
    renamed: a rename changes the change time, not the modification time); else None."""
    if stamped is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    same = identity(st)[:4] == identity(stamped)[:4]
    return identity(st) if same else None


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

    def __init__(
        self, store: Uploads, record: ShareRecord, part: Path, file: ShareWriter, *, pending: bool = False
    ) -> None:
        self.store = store
        self.record = record
        self.received = 0
        self.pending = pending
        self.on_hold: Callable[[Upload, bytes], Awaitable[None]] | None = None
        """Pending uploads: awaited with the computed root instead of indexing (the file is not
        fsynced yet: see :meth:`storage_node.store.pending.PendingUploads.hold`)."""
        self._part = part
        self._file = file
        self._chunks: list[bytes] = []  # received, not yet handed to the worker thread
        self._buffered = 0
        self._carry = bytearray()  # the start of a block the last batch ended inside
        self._roots: list[bytes] = []
        self._done = False
        self._released = False
        self._absorbing: asyncio.Future[None] | None = None
        self.stamped: os.stat_result | None = None
        """The part file once fsynced and stamped (see :mod:`.at_rest`), or None if it could not be."""
        self.at_rest: Identity | None = None
        """The installed file's identity, if unchanged since the stamp (its blocks are verified at rest)."""

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self.store._release(self.record)

    async def write(self, chunk: bytes) -> None:
        """Take the next bytes of the share (kept by reference: a caller that reuses a mutable
        buffer passes a copy). Every ``FLUSH`` bytes one worker-thread call writes and hashes them."""
        if self.received + len(chunk) > self.record.size:
            await self.abort()
            raise UploadMismatch(f"more than the declared {self.record.size} bytes")
        self.received += len(chunk)
        self._chunks.append(chunk if type(chunk) is bytes else bytes(chunk))
        self._buffered += len(chunk)
        if self._buffered >= FLUSH:
            data = self._take()
            with _disk_full_is_507():
                await self._drain()  # at most one batch being written and hashed while the next arrives
            self._absorbing = asyncio.ensure_future(asyncio.to_thread(self._absorb, data))

    def _take(self) -> list[bytes]:
        """The buffered chunks, as the next batch."""
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        return chunks

    async def _drain(self) -> None:
        if self._absorbing is not None:
            pending, self._absorbing = self._absorbing, None
            await pending

    def _absorb(self, chunks: list[bytes]) -> None:
        """Write a batch to the part file and hash its whole blocks (runs in a worker thread): its
        chunks joined once (here, off the event loop), the block the last batch ended inside
        completed first, the rest hashed in one call of the C core, and only the part of a block
        this batch ends inside copied (kept for the next)."""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._file.write(data)
        size, leaf = self.record.block_size, self.record.leaf_size
        view = memoryview(data)
        if self._carry:
            need = size - len(self._carry)
            self._carry += view[:need]
            if len(self._carry) < size:
                return
            self._roots.append(merkle.root(self._carry, leaf))
            self._carry = bytearray()
            view = view[need:]
        cut = len(view) - len(view) % size
        if cut:
            self._roots.extend(merkle.block_roots(view[:cut], size, leaf))
        if cut < len(view):
            self._carry += view[cut:]

    def _finish(self) -> bytes:
        if self._carry:  # the share's last, short block
            self._roots.append(merkle.root(self._carry, self.record.leaf_size))
            self._carry = bytearray()
        self._file.finish()
        if not self.pending:  # a pending share is fsynced in the background, before its activation
            os.fsync(self._file.fileno())
        with contextlib.suppress(OSError):  # the bytes just hashed are the file's: stamp it (see .at_rest)
            self.stamped = stamp(self._file.fileno())
        self._file.close()
        return merkle.root_of_nodes(self._roots)

    async def commit(self) -> ShareRecord:
        """Check size and root; make the share visible atomically."""
        r = self.record
        try:
            if self.received != r.size:
                raise UploadMismatch(f"received {self.received} of {r.size} declared bytes")
            data = self._take()
            with _disk_full_is_507():
                await self._drain()
                await asyncio.to_thread(self._absorb, data)
                root = await asyncio.to_thread(self._finish)
                if self.pending and self.on_hold is not None:
                    await self.on_hold(self, root)
                    self._done = self._released = True  # the held share keeps the reservation
                    return dataclasses.replace(r, root=root, state="pending")
                if root != r.root:
                    raise UploadMismatch("the bytes do not hash to the declared share root")
                record = dataclasses.replace(r, state="ok", stored_at=time.time())
                await asyncio.to_thread(self._install, record)
            self._done = True
            if self.at_rest is not None:
                self.store.at_rest.uploaded((r.dataset, r.idx), self.at_rest, len(self._roots))
            return record
        finally:
            if not self._done:
                await self.abort()
            self._release()

    @property
    def part(self) -> Path:
        return self._part

    @property
    def block_roots(self) -> list[bytes]:
        return self._roots

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
        self.at_rest = unchanged_since(self.stamped, final)
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
