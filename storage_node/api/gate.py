"""Admission of HTTP connections: a node-wide cap and a per-client-address cap, checked as a
connection is accepted, before aiohttp parses a byte of it.

A connection over either cap is answered ``503`` with ``Retry-After`` and closed; refusals are
logged as one rate-limited warning (how many, from how many addresses), never one line per socket.
Idle and half-sent-header connections are closed by aiohttp's ``keepalive_timeout``, which (from
aiohttp 3.11) runs from the moment a connection is accepted until its first complete request, and
again between requests: :class:`GatedSite` sets it to the node's header timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger("datasov.node.api")

BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
    b'Connection: close\r\nContent-Length: 62\r\n\r\n{"error": "busy", "message": "too many connections, retry"}  '
)


REFUSED_LINGER = 1.0  # seconds a refused connection may stay to read its 503


class ConnectionGate:
    """Counts open connections; ``admit`` says whether one more from ``ip`` may open."""

    def __init__(self, *, max_connections: int, max_per_ip: int, warn_every: float = 10.0) -> None:
        if max_connections < 1 or max_per_ip < 1:
            raise ValueError("connection caps must be at least 1")
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.warn_every = warn_every
        self.open = 0
        self.per_ip: Counter[str] = Counter()
        self.refused_total = 0
        self._refused: Counter[str] = Counter()  # since the last warning
        self._last_warning = float("-inf")

    def admit(self, ip: str) -> bool:
        if self.open >= self.max_connections or self.per_ip[ip] >= self.max_per_ip:
            self._refuse(ip)
            return False
        self.open += 1
        self.per_ip[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self.open -= 1
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]

    def _refuse(self, ip: str) -> None:
        self.refused_total += 1
        self._refused[ip] += 1
        now = time.monotonic()
        if now - self._last_warning >= self.warn_every:
            top, top_count = self._refused.most_common(1)[0]
            log.warning(
                "refused %d connection(s) from %d address(es) (most from %s: %d): over the cap of %d "
                "per node or %d per address; %d open",
                sum(self._refused.values()),
                len(self._refused),
                top,
                top_count,
                self.max_connections,
                self.max_per_ip,
                self.open,
            )
            self._refused.clear()
            self._last_warning = now

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` that admits before ``factory`` sees anything."""
        return lambda: _Gated(self, factory)


class _Gated(asyncio.Protocol):
    """Forwards every callback to the aiohttp protocol once the connection is admitted."""

    def __init__(self, gate: ConnectionGate, factory: Callable[[], asyncio.Protocol]) -> None:
        self._gate = gate
        self._factory = factory
        self._inner: asyncio.Protocol | None = None
        self._ip = ""
        self._hangup: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._ip = str(peer[0]) if peer else ""
        if not self._gate.admit(self._ip):
            # answer, stop sending, and let the client close first (closing on unread input would
            # reset the connection and lose the answer); a client that stays is cut off shortly
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(BUSY)
                transport.write_eof()
            self._hangup = asyncio.get_running_loop().call_later(REFUSED_LINGER, transport.abort)  # type: ignore[attr-defined]
            return
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._hangup is not None:
            self._hangup.cancel()
        if self._inner is not None:
            self._gate.release(self._ip)
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None  # refused: None closes

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class GatedSite(web.TCPSite):
    """A TCP site whose connections pass a :class:`ConnectionGate` first.

    Its listen backlog holds as many pending connections as the gate admits (at most 4096): with
    asyncio's default of 100, a burst of clients connecting at once (200 readers starting together)
    overflows the accept queue and the kernel drops SYNs, which clients retry only after a second."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, gate: ConnectionGate) -> None:
        super().__init__(runner, host, port, backlog=min(4096, max(128, gate.max_connections)))
        self.gate = gate

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.gate.wrap(server), self._host, self._port, backlog=self._backlog)
        self._bound_port = self._server.sockets[0].getsockname()[1]
