"""JSON-RPC over HTTP(S) for the chain reader (:mod:`contracts.rpc`), on the standard library.

``http.client`` on worker threads (``asyncio.to_thread``) with kept-alive connections: a command
that only reads the chain then imports no HTTP client library at all (aiohttp alone costs about as
much to import as the reads take). Requests may run concurrently (one connection each); a
kept-alive connection the server closed meanwhile is retried once on a fresh one (reads only:
the reader sends no transactions). Calls made in the same turn of the event loop go as one JSON-RPC
batch (one POST, one worker thread), each answered or refused on its own; an endpoint that answers a
batch with anything but a list gets the calls one by one.
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
        self._queued: dict[asyncio.AbstractEventLoop, list[tuple[dict[str, Any], asyncio.Future[Any]]]] = {}
        self._sending: set[asyncio.Future[None]] = set()

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
        """Send one call; the calls made in the same turn of the event loop (an ``asyncio.gather`` of
        reads) go together as one JSON-RPC batch in one POST, each answered (or refused) on its own."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        queued = self._queued.setdefault(loop, [])  # per loop: a future is completed on its own loop
        queued.append(({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}, answer))
        if len(queued) == 1:
            loop.call_soon(self._send_queued, loop)
        return self._result(method, await answer)

    def _send_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        queued = self._queued.pop(loop)
        task = asyncio.ensure_future(self._send(queued))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, queued: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        try:
            if len(queued) == 1:
                answers = [await self._post_json(queued[0][0])]
            else:
                got = await self._post_json([call for call, _ in queued])
                if isinstance(got, list):
                    by_id = {a.get("id"): a for a in got if isinstance(a, dict)}
                    answers = [by_id.get(call["id"]) for call, _ in queued]
                else:  # an endpoint that takes no batches: each call on its own
                    answers = list(await asyncio.gather(*(self._post_json(call) for call, _ in queued)))
        except BaseException as err:
            for _, answer in queued:
                if not answer.done():
                    answer.set_exception(err)
            if not isinstance(err, Exception):
                raise
            return
        for (call, answer), got in zip(queued, answers, strict=True):
            if not answer.done():
                answer.set_result(got if got is not None else {"error": f"no answer to call {call['id']}"})

    async def _post_json(self, body: Any) -> Any:
        status, data = await asyncio.to_thread(self._post, json.dumps(body).encode())
        try:
            return json.loads(data)
        except ValueError as err:
            what = body["method"] if isinstance(body, dict) else f"a batch of {len(body)} calls"
            raise errors.ChainError(f"{what}: {self.url} answered HTTP {status}: {data[:200]!r}") from err

    def _result(self, method: str, answer: Any) -> Any:
        if not isinstance(answer, dict):
            raise errors.ChainError(f"{method}: malformed JSON-RPC answer {str(answer)[:200]!r}")
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
