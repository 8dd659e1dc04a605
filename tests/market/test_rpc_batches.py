"""The reader's JSON-RPC transport (:class:`contracts.rpc_http.HttpTransport`) sends the calls made in
one turn of the event loop as one batch: one POST, each call answered or refused on its own; an
endpoint that takes no batches gets them one by one; an unreachable one fails every call clearly.
Against a small JSON-RPC server on loopback that counts what it receives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from contracts import errors
from contracts.rpc_http import HttpTransport

pytestmark = pytest.mark.asyncio(loop_scope="function")


class Server:
    def __init__(self, *, batches: bool = True) -> None:
        self.batches = batches
        self.bodies: list[Any] = []

    def answer(self, call: dict[str, Any]) -> dict[str, Any]:
        if call["method"] == "eth_call":
            return {"jsonrpc": "2.0", "id": call["id"], "error": {"code": 3, "message": "reverted", "data": "0xdead"}}
        if call["method"] == "fail":
            return {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32000, "message": "no"}}
        return {"jsonrpc": "2.0", "id": call["id"], "result": call["params"]}

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.bodies.append(body)
        if isinstance(body, list):
            if not self.batches:
                return web.json_response({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "no"}})
            return web.json_response([self.answer(c) for c in reversed(body)])  # any order: matched by id
        return web.json_response(self.answer(body))


@pytest_asyncio.fixture(loop_scope="function")
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Server, HttpTransport]]:
    server = Server(batches=getattr(request, "param", True))
    app = web.Application()
    app.router.add_post("/", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    transport = HttpTransport(f"http://127.0.0.1:{port}")
    try:
        yield server, transport
    finally:
        await transport.close()
        await runner.cleanup()


async def test_calls_made_together_go_in_one_post(served: tuple[Server, HttpTransport]) -> None:
    server, transport = served
    got = await asyncio.gather(*(transport.request("echo", [i]) for i in range(5)))
    assert got == [[i] for i in range(5)]
    assert len(server.bodies) == 1
    assert [c["params"] for c in server.bodies[0]] == [[i] for i in range(5)]


async def test_a_lone_call_is_not_a_batch(served: tuple[Server, HttpTransport]) -> None:
    server, transport = served
    assert await transport.request("echo", ["x"]) == ["x"]
    assert isinstance(server.bodies[0], dict)


async def test_each_call_of_a_batch_is_refused_on_its_own(served: tuple[Server, HttpTransport]) -> None:
    server, transport = served
    got = await asyncio.gather(
        transport.request("echo", [1]),
        transport.request("eth_call", [{}, "latest"]),
        transport.request("fail", []),
        transport.request("echo", [2]),
        return_exceptions=True,
    )
    assert got[0] == [1]
    assert got[3] == [2]
    assert isinstance(got[1], errors.CallReverted)
    assert got[1].data == "0xdead"
    assert isinstance(got[2], errors.ChainError)
    assert not isinstance(got[2], errors.CallReverted)
    assert len(server.bodies) == 1


@pytest.mark.parametrize("served", [False], indirect=True)
async def test_an_endpoint_without_batches_gets_the_calls_one_by_one(served: tuple[Server, HttpTransport]) -> None:
    server, transport = served
    got = await asyncio.gather(*(transport.request("echo", [i]) for i in range(3)))
    assert got == [[0], [1], [2]]
    assert isinstance(server.bodies[0], list)
    assert sorted(b["params"][0] for b in server.bodies[1:]) == [0, 1, 2]


async def test_an_unreachable_endpoint_fails_every_call() -> None:
    transport = HttpTransport("http://127.0.0.1:9")
    try:
        got = await asyncio.gather(*(transport.request("echo", [i]) for i in range(3)), return_exceptions=True)
    finally:
        await transport.close()
    assert all(isinstance(g, errors.ChainUnavailable) for g in got)
