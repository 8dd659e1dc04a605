"""What a node tells its operator, at INFO: each accepted share, each download, and a periodic summary.

A download is every range request one client address makes for one share until it has been quiet
for ``window`` seconds (a reader fetching a share in a hundred ranges is one download, one line);
the requests and bytes are counted and reported in the summary. The summary (every
``NodeConfig.summary_interval`` seconds) gives shares held, bytes used, what happened since the
last one, and the prover's proofs made and failed (from the node's metrics). Nothing secret is
logged: dataset ids, share indexes, sizes, client IP addresses and signer addresses only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

log = logging.getLogger("datasov.node.activity")


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


@dataclass
class Activity:
    registry: CollectorRegistry | None = None  # the node's metrics (for proof counts)
    window: float = 60.0  # seconds a download may go quiet and still be the same download
    clock: Callable[[], float] = time.monotonic
    accepted_count: int = 0
    accepted_bytes: int = 0
    downloads: int = 0
    range_requests: int = 0
    served_bytes: int = 0
    _recent: dict[tuple[str, str, int], float] = field(default_factory=dict)

    def accepted(self, dataset: str, index: int, size: int, signer: str) -> None:
        self.accepted_count += 1
        self.accepted_bytes += size
        log.info("accepted share %s/%d (%d bytes) from %s", dataset, index, size, signer)

    def served(self, client: str, dataset: str, index: int, size: int) -> None:
        now = self.clock()
        key = (client, dataset, index)
        last = self._recent.get(key)
        if last is None or now - last > self.window:
            self.downloads += 1
            log.info("serving share %s/%d to %s", dataset, index, client)
        self._recent[key] = now
        self.range_requests += 1
        self.served_bytes += size
        if len(self._recent) > 4096:  # forget quiet downloads; bounded whatever the clients do
            self._recent = {k: t for k, t in self._recent.items() if now - t <= self.window}

    def _proofs(self, result: str) -> int:
        if self.registry is None:
            return 0
        value = self.registry.get_sample_value("datasov_storage_proofs_total", {"result": result})
        return int(value or 0)

    def summary(self, *, shares: int, used: int, capacity: int) -> str:
        """The summary line for the period since the last call (its counters then restart)."""
        line = (
            f"{shares} share(s) held, {_mib(used)} of {_mib(capacity)}; since the last summary: "
            f"{self.accepted_count} accepted ({_mib(self.accepted_bytes)}), {self.downloads} download(s) "
            f"({self.range_requests} range requests, {_mib(self.served_bytes)} served); "
            f"proofs ok {self._proofs('ok')}, failed {self._proofs('failed')} (since start)"
        )
        self.accepted_count = self.accepted_bytes = self.downloads = self.range_requests = self.served_bytes = 0
        return line
