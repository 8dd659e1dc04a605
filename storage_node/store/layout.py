"""The store's layout on disk and its bookkeeping: paths, the index behind a lock, quota (used, free,
reserved by uploads in progress), order nonces, and the in-memory caches every part shares.

The layout under the node's home is drawn in :mod:`storage_node.store.shares`; dataset ids and share
indices are checked here (:func:`check_address`) before anything becomes a path.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..errors import (
    Replayed,
    ShareNotFound,
)
from .at_rest import REVERIFY_AFTER, AtRest
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


class StoreBase:
    """State and bookkeeping shared by the store's parts (see :class:`~storage_node.store.shares.ShareStore`)."""

    def __init__(self, home: Path, *, capacity: int, reverify_after: float = REVERIFY_AFTER) -> None:
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
        self.at_rest = AtRest(reverify_after=reverify_after)  # blocks verified since their file last changed
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

    def _forget(self, dataset: str, idx: int) -> None:
        self._records.pop((dataset, idx), None)
        self.at_rest.forget((dataset, idx))
        for key in [k for k in self._digests if k[:2] == (dataset, idx)]:
            self._digest_bytes -= len(self._digests.pop(key))

    def manifest_path(self, dataset: str) -> Path:
        return self.shares_dir / dataset / "manifest.json"

    def close(self) -> None:
        self.index.close()
