"""Recent latencies of a fetch's range requests, by holder class and size: when a read is late
enough to hedge (:mod:`market.remote_source`; Dean and Barroso, "The Tail at Scale")."""

from __future__ import annotations

import threading
from collections import deque


class Latencies:
    """Recent latencies of one holder class's range requests, by request size (thread-safe).

    :meth:`hedge_after` is the p95 of the last ``window`` answers of that size, at least ``floor``
    seconds, once ``min_samples`` of them came in (None before: no hedging on a guess);
    :meth:`take_hedge` keeps hedges within ``budget`` per answer."""

    def __init__(self, *, window: int = 64, min_samples: int = 8, floor: float = 0.005, budget: float = 0.05) -> None:
        self._window = window
        self._min = min_samples
        self._floor = floor
        self._budget = budget
        self._lock = threading.Lock()
        self._seen: dict[int, deque[float]] = {}
        self._answers = 0
        self._hedges = 0

    def record(self, size: int, seconds: float) -> None:
        with self._lock:
            self._seen.setdefault(size, deque(maxlen=self._window)).append(seconds)
            self._answers += 1

    def take_hedge(self) -> bool:
        """May one more hedge be sent? At most ``budget`` hedges per answer so far: on a machine
        or link that is slow for everyone, hedging would only add load (it pays for stragglers)."""
        with self._lock:
            if self._hedges + 1 > self._budget * self._answers:
                return False
            self._hedges += 1
            return True

    def hedge_after(self, size: int) -> float | None:
        """The p95 latency of requests of ``size`` bytes, or of the next larger size with enough
        answers (a smaller request is no slower: the last, shorter block of a share has a class
        of its own otherwise); None if there is none."""
        with self._lock:
            sizes = sorted(s for s, seen in self._seen.items() if s >= size and len(seen) >= self._min)
            if not sizes:
                return None
            ordered = sorted(self._seen[sizes[0]])
        return max(self._floor, ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))])
