"""Garbage collection: deleting a share (files, index entry, caches) and the shares whose storage
term has ended; expired order nonces go with them."""

from __future__ import annotations

import asyncio
import time

from .layout import (
    StoreBase,
)


class Collection(StoreBase):
    """Deletion and garbage collection (mixed into ``ShareStore``)."""

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
