"""A byte budget for the read-ahead windows of one fetch's share sources (:mod:`market.remote_source`).

Each :class:`~market.remote_source.RemoteShareSource` keeps a window (one range request of
``readahead`` blocks) until each of its blocks was read or the decoder is far past it. A source
that is asked once and then not read any more (a spare holder, a lost hedge) would keep its windows
until the fetch ends: up to ~10 MiB per source, 300 MiB over 30 holders. With one budget shared by
the sources of a fetch, the windows held by all of them together stay within ``limit`` bytes: a
window that would go over lets go of the least recently used ones first (their owner asks again if
a block of one is wanted after all; a request still running is not cancelled, and whoever waits on
it still gets its answer).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

READAHEAD_BUDGET = 64 << 20
"""Bytes of read-ahead windows the sources of one fetch hold at most (k sources being read need
about 2 windows each: 40 MiB at 10 x 2 MiB windows)."""


WINDOWS_PER_SOURCE_READ = 4
"""Windows each of the k sources a decoder reads may hold at once (measured: 22 windows, ~2.2 per
source, for a 10-of-30 decode on 8 threads; a budget below what they need would evict windows still
to be read, and ask for them again)."""


def budget_for(k: int, window_bytes: int) -> int:
    """The budget of a fetch reading ``k`` holders in windows of ``window_bytes``: what those k need
    (:data:`WINDOWS_PER_SOURCE_READ` windows each), at least :data:`READAHEAD_BUDGET`."""
    return max(READAHEAD_BUDGET, WINDOWS_PER_SOURCE_READ * k * window_bytes)


class Holder(Protocol):
    def evict(self, window: int, token: object) -> None:
        """Let go of ``window`` if it is still the request ``token`` (any thread; takes the holder's lock)."""


class ReadaheadBudget:
    """Windows held by a fetch's sources, least recently used first, at most ``limit`` bytes (thread-safe)."""

    def __init__(self, limit: int = READAHEAD_BUDGET) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._held: OrderedDict[tuple[int, int], tuple[Holder, object, int]] = OrderedDict()
        self.bytes = 0
        self.peak = 0
        self.evicted = 0

    def take(self, holder: Holder, window: int, token: object, size: int) -> list[tuple[Holder, int, object]]:
        """Note a window just started; the least recently used others over the limit, to be let go
        of by the caller with :meth:`Holder.evict` once it holds no source lock."""
        key = (id(holder), window)
        victims: list[tuple[Holder, int, object]] = []
        with self._lock:
            old = self._held.pop(key, None)
            if old is not None:
                self.bytes -= old[2]
            self._held[key] = (holder, token, size)
            self.bytes += size
            while self.bytes > self.limit and len(self._held) > 1:
                (_, number), (owner, tok, got) = self._held.popitem(last=False)
                self.bytes -= got
                self.evicted += 1
                victims.append((owner, number, tok))
            self.peak = max(self.peak, self.bytes)
        return victims

    def touch(self, holder: Holder, window: int) -> None:
        """A block of ``window`` was read: it is the most recently used."""
        with self._lock:
            key = (id(holder), window)
            if key in self._held:
                self._held.move_to_end(key)

    def release(self, holder: Holder, window: int, token: object) -> None:
        """``window`` was let go of by its holder (read whole, left behind, evicted, closed)."""
        with self._lock:
            key = (id(holder), window)
            got = self._held.get(key)
            if got is not None and got[1] is token:
                del self._held[key]
                self.bytes -= got[2]
