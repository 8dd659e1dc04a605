"""JSON-RPC over HTTP(S) for the chain reader (:mod:`contracts.rpc`), on the standard library.

``http.client`` on worker threads (``asyncio.to_thread``) with kept-alive connections: a command
that only reads the chain then imports no HTTP client library at all (aiohttp alone costs about as
much to import as the reads take). Requests may run concurrently (one connection each); a
kept-alive connection the server closed meanwhile is retried once on a fresh one (reads only:
the reader sends no transactions).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import itertools
import json
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

from . import errors

MAX_ANSWER = 64 << 20  # a log query over a long range can be large, not unbounded


def _revert_data(error: Any) -> str | None:
    """Revert bytes in a JSON-RPC error: ``error.data`` (geth, the devnet) or ``error.data.data`` (Hardhat)."""
    data = error.get("data") if isinstance(error, dict) else None
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, str) and data.startswith("0x") else None


class HttpTransport:
    """``await request(method, params)``: the call's ``result``; :class:`contracts.errors.ChainUnavailable`
    if the endpoint cannot be reached, :class:`~contracts.errors.CallReverted` for a refused ``eth_call``,
    :class:`~contracts.errors.ChainError` for any other error answer."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise errors.ChainUnavailable(f"{url!r} is not an http(s) JSON-RPC URL")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
        self._timeout = timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            import ssl

            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def _post(self, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            reused = self._idle.pop() if self._idle else None
        for conn in (reused, None) if reused is not None else (None,):
            conn = conn or self._connect()
            try:
                conn.request("POST", self._path, body, self._headers)
                response = conn.getresponse()
                data = response.read(MAX_ANSWER + 1)
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                if conn is reused:
                    continue  # the server closed a kept-alive connection: once more on a new one
                raise errors.ChainUnavailable(f"cannot reach {self.url}: {err}") from err
            if len(data) > MAX_ANSWER:
                conn.close()
                raise errors.ChainError(f"{self.url} answered over {MAX_ANSWER} bytes")
            if response.will_close:
                conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)
            return response.status, data
        raise AssertionError("unreachable")

    async def request(self, method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}).encode()
        status, data = await asyncio.to_thread(self._post, body)
        try:
            answer = json.loads(data)
        except ValueError as err:
            raise errors.ChainError(f"{method}: {self.url} answered HTTP {status}: {data[:200]!r}") from err
        if not isinstance(answer, dict):
            raise errors.ChainError(f"{method}: malformed JSON-RPC answer {data[:200]!r}")
        if "error" in answer:
            revert = _revert_data(answer["error"])
            if revert is not None and method == "eth_call":
                raise errors.CallReverted(revert)
            raise errors.ChainError(f"{method}: {answer['error']}")
        return answer.get("result")

    async def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
