"""Pending shares: uploads for a draft deal, received before the data's commitment root exists.

A streaming publisher sends each share while it is still being encoded, so neither the node nor the
order can know the share root up front. Such an upload is checked against the *draft* deal
(``openDraftDeal``: owner, provider, share size and escrow on-chain; see
:meth:`storage_node.authorize.DealAuthorizer.pending`) and held here::

    tmp/pending/<deal>-<index>.share   the bytes, hashed on the way in (their root is kept in memory)
    tmp/pending/<deal>-<index>.roots   their block roots

A pending share is never served, never proven, not in the index and not announced: it only takes
its reserved space. :meth:`PendingUploads.activate` turns it into an ordinary share once an ordinary
storage order for the same deal and share (checked against the root committed on-chain) names the
root the node computed itself. Pending shares not activated within ``pending_hold`` seconds are
deleted by garbage collection, and a restart drops them all (their bookkeeping is in memory), so
what an unpaid or vanished publisher leaves behind is bounded by the share sizes of draft deals
naming this node, for at most ``pending_hold`` seconds (docs/streaming-publish.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotPending, ShareExists, UploadMismatch
from .at_rest import Identity
from .gc import Collection
from .index import ShareRecord
from .layout import _fsync_dir, check_address
from .uploads import Upload, Uploads, unchanged_since

PENDING_HOLD = 1800.0
"""Seconds a pending share waits for activation before garbage collection deletes it."""


@dataclass(frozen=True, slots=True)
class Held:
    """A received pending share: its size and computed root, where it lies, until when it is kept."""

    deal_id: int
    idx: int
    size: int
    leaf_size: int
    block_size: int
    root: bytes
    path: Path
    roots_path: Path
    deadline: float
    owner: str
    stamped: os.stat_result | None = None  # the file as its bytes were hashed (see .at_rest)
    synced: asyncio.Future[None] | None = None  # its fsync, run in the background (see PendingUploads.hold)


def pending_key(deal_id: int, idx: int) -> tuple[str, int]:
    """The key a pending upload holds its place under (never a dataset id: those are 64 hex)."""
    return (f"deal:{deal_id}", idx)


def _fsync_files(*paths: Path) -> None:
    """The share's bytes and its block roots on disk (what the node serves and proves from)."""
    for path in paths:
        _fsync_dir(path)  # works on a file too


def _quiet(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()  # retrieved: not logged as never retrieved


class PendingUploads(Uploads, Collection):
    """Receiving, holding, activating and collecting pending shares (mixed into ``ShareStore``)."""

    pending_hold: float = PENDING_HOLD

    @property
    def pending_dir(self) -> Path:
        return self.tmp_dir / "pending"

    @property
    def held(self) -> dict[tuple[int, int], Held]:
        """Pending shares by (deal id, share index)."""
        try:
            return self._held
        except AttributeError:
            self._held: dict[tuple[int, int], Held] = {}
            return self._held

    def recover(self) -> dict[str, int]:
        report = super().recover()
        dropped = 0
        if self.pending_dir.exists():
            dropped = sum(1 for p in self.pending_dir.iterdir() if p.suffix == ".share")
            shutil.rmtree(self.pending_dir, ignore_errors=True)
        self.held.clear()
        return {**report, "pending_dropped": dropped} if dropped else report

    async def begin_pending(
        self, deal_id: int, idx: int, *, size: int, leaf_size: int, block_size: int, owner: str
    ) -> Upload:
        """Reserve ``size`` bytes and start receiving a pending share (raises before any byte is written)."""
        if (deal_id, idx) in self.held:
            raise ShareExists(f"share {idx} of deal {deal_id} is already pending here")
        upload = await self.begin(
            pending_key(deal_id, idx)[0],
            idx,
            root=b"",
            size=size,
            leaf_size=leaf_size,
            block_size=block_size,
            deal_id=deal_id,
            owner=owner,
            pending=True,
        )
        upload.on_hold = self.hold
        return upload

    async def hold(self, upload: Upload, root: bytes) -> None:
        """Keep a received pending share under ``tmp/pending`` and start its fsync in a worker thread.

        The upload's answer does not wait for the fsync (the publisher waits for every node's
        answer before it commits the root; the disk writes while the root is committed), and
        :meth:`activate` waits for it before the share is indexed. A pending share is dropped at
        restart, so it needs to be on disk only once it is activated."""
        held = await asyncio.to_thread(self._hold, upload, root)
        synced = asyncio.ensure_future(asyncio.to_thread(_fsync_files, held.path, held.roots_path))
        synced.add_done_callback(_quiet)  # awaited by activation; otherwise its error is not news
        self.held[(held.deal_id, held.idx)] = dataclasses.replace(held, synced=synced)

    def _hold(self, upload: Upload, root: bytes) -> Held:
        """Move a received pending share under ``tmp/pending`` (runs in a worker thread)."""
        r = upload.record
        self.pending_dir.mkdir(exist_ok=True)
        path = self.pending_dir / f"{r.deal_id}-{r.idx}.share"
        roots_path = path.with_suffix(".roots")
        roots_path.write_bytes(b"".join(upload.block_roots))
        os.replace(upload.part, path)
        deadline = time.time() + self.pending_hold
        shape = (r.size, r.leaf_size, r.block_size)
        return Held(r.deal_id, r.idx, *shape, root, path, roots_path, deadline, r.owner, upload.stamped)

    async def activate(
        self,
        deal_id: int,
        idx: int,
        *,
        dataset: str,
        root: bytes,
        expires_at: float = 0.0,
        share_proof: tuple[bytes, ...] = (),
    ) -> ShareRecord:
        """Make a pending share an ordinary one, if its bytes hash to ``root`` (the committed one).

        The caller has checked ``root`` against the deal's committed commitment root. A pending share
        whose root differs is deleted (those bytes are not what the deal pays for)."""
        check_address(dataset, idx)
        held = self.held.get((deal_id, idx))
        if held is None:
            raise NotPending(f"no pending upload of share {idx} of deal {deal_id} (expired, never sent, or restarted)")
        if held.root != root:
            await self._drop(held)
            raise UploadMismatch("the pending bytes do not hash to the committed share root: deleted")
        if held.synced is not None:
            await asyncio.shield(held.synced)  # its bytes on disk before the index names it
            if self.held.get((deal_id, idx)) is not held:  # collected or activated meanwhile
                raise NotPending(f"share {idx} of deal {deal_id} is no longer pending here")
        async with self._begin_lock:
            existing = await self._db(self.index.get, dataset, idx)
            if (dataset, idx) in self._active or (existing is not None and existing.state == "ok"):
                raise ShareExists(f"share {dataset}/{idx} already stored or being uploaded")
            self.held.pop((deal_id, idx), None)
            record = ShareRecord(
                dataset,
                idx,
                root,
                held.size,
                held.leaf_size,
                held.block_size,
                deal_id,
                "ok",
                time.time(),
                expires_at,
                held.owner,
                share_proof,
            )
            try:
                at_rest = await asyncio.to_thread(self._install_held, held, record)
            finally:
                self._unreserve(held)
        if at_rest is not None:
            self.at_rest.uploaded((dataset, idx), at_rest, -(-held.size // held.block_size))
        return dataclasses.replace(record)

    def _install_held(self, held: Held, record: ShareRecord) -> Identity | None:
        """Move the held files into place and index the share; the file's identity if its blocks are
        verified at rest (unwritten since they were hashed)."""
        final = self.share_path(record.dataset, record.idx)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(held.roots_path, self.roots_path(record.dataset, record.idx))
        os.replace(held.path, final)
        at_rest = unchanged_since(held.stamped, final)
        _fsync_dir(final.parent)
        with self._lock:
            self.index.add(record)
        return at_rest

    def _unreserve(self, held: Held) -> None:
        self._reserved -= held.size
        self._active.discard(pending_key(held.deal_id, held.idx))

    async def _drop(self, held: Held) -> None:
        if self.held.pop((held.deal_id, held.idx), None) is None:
            return

        if held.synced is not None:
            with contextlib.suppress(Exception):
                await held.synced  # no fsync left running on a file being removed

        def remove() -> None:
            held.path.unlink(missing_ok=True)
            held.roots_path.unlink(missing_ok=True)

        with contextlib.suppress(OSError):
            await asyncio.to_thread(remove)
        self._unreserve(held)

    async def collect_garbage(self, now: float | None = None) -> int:
        """Also delete pending shares past their hold (counted with the rest)."""
        now = time.time() if now is None else now
        stale = [h for h in self.held.values() if h.deadline <= now]
        for held in stale:
            await self._drop(held)
        return await super().collect_garbage(now) + len(stale)

    def pending_bytes(self) -> int:
        return sum(h.size for h in self.held.values())
