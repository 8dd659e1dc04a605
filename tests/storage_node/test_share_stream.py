"""``NodeClient.share_blocks`` reads a whole share on a thread (``storage_node.share_stream``):
blocks in order; a node that errs, breaks off, is not there or stalls gives the client's named
errors; a reader that gives up on a stalled node is not held by the thread blocked in recv."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from storage_node.client import BrokenResponse, NodeClient, NodeUnavailable, RemoteError

pytestmark = pytest.mark.asyncio
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """A raw HTTP server on loopback answering every connection with ``handler``."""
    tasks: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def answer(status: str, body: bytes, *, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return f"HTTP/1.1 {status}\r\nContent-Length: {size}\r\n\r\n".encode() + body


async def blocks_of(url: str, sizes: list[int], **client: float) -> list[bytes]:
    async with NodeClient(**client) as node:
        return [bytes(b) async for b in node.share_blocks(url, "ab" * 32, 0, sizes)]


async def test_the_share_comes_in_blocks_of_the_sizes_asked_in_order() -> None:
    data = os.urandom(5 * 256 * 1024 + 77)
    sizes = [256 * 1024] * 5 + [77]

    async def whole(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(answer("200 OK", data))
        await w.drain()

    async with serving(whole) as url:
        got = await blocks_of(url, sizes)
    assert [len(b) for b in got] == sizes
    assert b"".join(got) == data


async def test_an_error_status_is_a_remote_error_with_the_nodes_code() -> None:
    async def refuse(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(answer("404 Not Found", json.dumps({"error": "share_not_found", "message": "no such share"}).encode()))
        await w.drain()

    async with serving(refuse) as url:
        with pytest.raises(RemoteError) as caught:
            await blocks_of(url, [10])
    assert (caught.value.status, caught.value.code) == (404, "share_not_found")


async def test_an_answer_cut_short_is_a_broken_response() -> None:
    async def cut(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(answer("200 OK", b"x" * 1000, length=4096))
        await w.drain()

    async with serving(cut) as url:
        with pytest.raises(BrokenResponse):
            await blocks_of(url, [2048, 2048])


async def test_a_node_that_is_not_there_is_unavailable() -> None:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(NodeUnavailable):
        await blocks_of(url, [10])


async def test_a_reader_that_gives_up_on_a_stalled_node_is_not_held_by_its_thread() -> None:
    release = asyncio.Event()

    async def stall(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(answer("200 OK", b"y" * 100, length=1 << 20))  # then nothing, until the test ends
        await w.drain()
        await release.wait()

    async with serving(stall) as url, NodeClient(timeout=60) as node:
        blocks = node.share_blocks(url, "ab" * 32, 0, [1 << 20])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(blocks), 0.5)  # the block never completes
        await blocks.aclose()  # wakes the thread blocked in recv: not the 60 s socket timeout (the per-test one fails)
        assert not release.is_set()  # the node never answered more
        release.set()
