"""A whole share's GET read on a thread, cut into blocks: the data path of a whole fetch.

:meth:`storage_node.client.NodeClient.share_blocks` reads here. The answer's bytes go from the
socket straight into each block's buffer (``http.client`` ``readinto``; ``recv`` releases the GIL),
on a worker thread, a few blocks per hand-over: the event loop only hears of whole blocks. Through
aiohttp every chunk of every share was copied and parsed on the event loop's thread, which then
had no time left to hand verified segments to the writers (``bench.fetch_transfer`` measures the
two).

Errors are the client's: :class:`~storage_node.client.NodeUnavailable` (cannot connect, or no byte
within the timeout), :class:`~storage_node.client.RemoteError` (the node answered an error status;
its JSON ``error``/``message`` read from at most 64 KiB of body), :class:`~storage_node.client.BrokenResponse`
(the answer ended before the blocks asked for). Nothing is verified here: the caller checks each
block against its committed root.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from .client import BrokenResponse, NodeUnavailable, RemoteError

MAX_ERROR_BODY = 64 * 1024
HAND_OVER = 1 << 20
"""Bytes read on the thread before the blocks are handed to the event loop (at least one block)."""


class ShareStream:
    """One GET of ``url`` (``open``), its body read block by block (``read``); thread-safe ``abort``."""

    def __init__(self, url: str, *, timeout: float, context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NodeUnavailable(f"{url!r} is not an http(s) URL")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._https = parts.scheme == "https"
        self._context = context
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        self._response: http.client.HTTPResponse | None = None
        self._lock = threading.Lock()
        self._aborted = False

    async def connect(self) -> None:
        """Connect on the event loop (cancellable: a connection that hangs does not hold a thread)."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                await asyncio.wait_for(loop.sock_connect(sock, address), self._timeout)
            except BaseException:
                sock.close()
                raise
        except (OSError, TimeoutError) as err:
            raise NodeUnavailable(f"node unreachable: {err}") from err
        sock.setblocking(True)
        sock.settimeout(self._timeout)
        with self._lock:
            self._conn.sock = sock

    def open(self) -> None:
        """Send the GET, read the status line and headers (on a thread: it blocks; after :meth:`connect`)."""
        try:
            if self._https:  # the TLS handshake blocks too: here, on the thread
                context = self._context or ssl.create_default_context()
                with self._lock:
                    self._conn.sock = context.wrap_socket(self._conn.sock, server_hostname=self.host)
            self._conn.request("GET", self._path, headers={"Accept-Encoding": "identity"})
            response = self._conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            raise NodeUnavailable(f"node unreachable: {err}") from err
        with self._lock:
            self._response = response
        if response.status >= 400:
            try:
                raw = response.read(MAX_ERROR_BODY)
            except (OSError, http.client.HTTPException):
                raw = b""
            try:
                body = json.loads(raw)
                if not isinstance(body, dict):  # a hostile node may send anything
                    raise ValueError("error body is not a JSON object")
                code, message = str(body.get("error", "error")), str(body.get("message", ""))
            except ValueError:
                code, message = "error", raw[:200].decode(errors="replace")
            raise RemoteError(response.status, code, message, url=self.url)

    def read(self, sizes: Iterator[int]) -> list[bytearray]:
        """The next blocks, of the sizes ``sizes`` gives, at least one and up to :data:`HAND_OVER`
        bytes; ``[]`` once ``sizes`` is exhausted."""
        response = self._response
        assert response is not None, "open() first"
        blocks: list[bytearray] = []
        total = 0
        for size in sizes:
            block = bytearray(size)
            view = memoryview(block)
            got = 0
            try:
                while got < size:
                    n = response.readinto(view[got:])
                    if not n:
                        raise BrokenResponse(f"node broke off its answer: {got} of a {size}-byte block")
                    got += n
            except TimeoutError as err:
                raise NodeUnavailable(f"node unreachable: no bytes in {self._timeout:g} s") from err
            except (OSError, http.client.HTTPException, ValueError) as err:
                if self._aborted:
                    raise BrokenResponse("stream closed") from err
                raise BrokenResponse(f"node broke off its answer: {err}") from err
            blocks.append(block)
            total += size
            if total >= HAND_OVER:
                break
        return blocks

    def abort(self) -> None:
        """Wake a thread blocked in :meth:`read` (it raises) and drop the connection (any thread)."""
        with self._lock:
            self._aborted = True
            sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the connection (once no thread reads from it)."""
        self._conn.close()
