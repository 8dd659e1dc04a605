"""Slowloris and slow uploads over real loopback sockets: idle and half-sent connections are closed
after a timeout, connections are capped per node and per client address, uploads have a deadline,
and other clients are served meanwhile. Refusals are a rate-limited warning, never a traceback each."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import aiohttp
import pytest

from storage_node.client import NodeClient
from storage_node.node import StorageNode

from .conftest import NodeFactory, publisher
from .test_api import BLOCK, DS, order_for

pytestmark = pytest.mark.asyncio(loop_scope="function")
ATTACKER, HONEST = "127.0.0.1", "127.0.0.2"  # all of 127/8 is loopback: two client addresses


def address(node: StorageNode) -> tuple[str, int]:
    host, port = node.url.removeprefix("http://").split(":")
    return host, int(port)


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def slowloris(node: StorageNode, count: int, *, source: str = ATTACKER) -> list[Conn]:
    """``count`` connections from ``source``: half of them silent, half with half a request line."""
    conns = []
    for i in range(count):
        reader, writer = await asyncio.open_connection(*address(node), local_addr=(source, 0))
        if i % 2:
            writer.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            await writer.drain()
        conns.append((reader, writer))
    return conns


def hang_up(conns: list[Conn]) -> None:
    for _, writer in conns:
        writer.close()


async def closed_by_node(conn: Conn) -> bytes:
    """What the node sent before it closed the connection (b"" for a silent close)."""
    return await conn[0].read()


def honest_client() -> NodeClient:
    client = NodeClient(timeout=10, retries=1)
    connector = aiohttp.TCPConnector(local_addr=(HONEST, 0))
    client._session = aiohttp.ClientSession(connector=connector, timeout=client._timeout)
    return client


async def test_idle_and_half_sent_connections_are_closed_and_others_served(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    node = await make_node(header_timeout=0.5, max_connections=64, max_connections_per_ip=16)
    data = os.urandom(2 * BLOCK)
    async with honest_client() as honest:
        await honest.put_share(node.url, order_for(node, data), publisher(), data)
        caplog.set_level(logging.INFO)
        t0 = time.monotonic()
        held = await slowloris(node, 40)
        # the attacker's address has its 16 connections; the rest were refused at once with a 503
        async with asyncio.timeout(5):
            refused = await asyncio.gather(*(closed_by_node(r) for r in held[16:]))
        assert all(b" 503 " in answer.split(b"\r\n")[0] for answer in refused)
        assert all(b"Retry-After:" in answer for answer in refused)
        # meanwhile another client is served
        assert await honest.get_share(node.url, DS, 0) == data
        # and the 16 held ones are closed by the node after the header timeout
        async with asyncio.timeout(10):
            answers = await asyncio.gather(*(closed_by_node(r) for r in held[:16]))
        assert time.monotonic() - t0 >= 0.5
        assert all(b" 200 " not in a for a in answers)
        assert await honest.get_share(node.url, DS, 0) == data
    hang_up(held)
    loud = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not loud, [r.getMessage() for r in loud]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "refused" in r.getMessage()]
    assert 1 <= len(warnings) <= 2  # 24 refusals, one rate-limited line (two at most around the interval)


async def test_the_node_wide_cap_admits_again_once_connections_close(make_node: NodeFactory) -> None:
    node = await make_node(header_timeout=0.5, max_connections=8, max_connections_per_ip=8)
    held = await slowloris(node, 8, source="127.0.0.3")
    late = await asyncio.open_connection(*address(node), local_addr=("127.0.0.4", 0))
    async with asyncio.timeout(5):
        assert b" 503 " in await closed_by_node(late)  # full, whoever asks
    hang_up([late])
    async with asyncio.timeout(10):
        await asyncio.gather(*(closed_by_node(r) for r in held))
    hang_up(held)
    async with honest_client() as honest:
        assert (await honest.health(node.url))["status"] == "ok"


async def test_a_trickling_upload_meets_its_deadline(make_node: NodeFactory) -> None:
    """One byte at a time never trips the idle timeout; the upload's overall deadline ends it."""
    node = await make_node(idle_timeout=5.0, upload_grace=0.5, min_upload_rate=1 << 20)
    data = os.urandom(2 * BLOCK)
    headers = order_for(node, data).headers(publisher())
    reader, writer = await asyncio.open_connection(*address(node))
    head = f"PUT /v1/shares/{DS}/0 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
    writer.write((head + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())

    async def trickle() -> None:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.05)  # the slow client's pace, well inside the idle timeout

    sender = asyncio.create_task(trickle())
    t0 = time.monotonic()
    async with asyncio.timeout(10):
        status = await reader.readline()
    sender.cancel()
    assert b" 408 " in status
    assert time.monotonic() - t0 < 4  # the deadline (0.5 s + size at 1 MiB/s), not the idle timeout
    writer.close()
    assert node.store is not None
    assert await node.store.used() == 0
    assert node.state is not None
    assert node.state.active_uploads == 0


async def test_a_burst_of_connections_while_the_loop_is_busy_is_queued_not_dropped(make_node: NodeFactory) -> None:
    """200 readers connecting at once while the node's loop is busy all complete their handshake
    (the kernel queues them: the listen backlog follows the connection cap); with asyncio's default
    backlog of 100 the rest had their SYNs dropped and would wait a second to retry."""
    import socket
    import threading

    node = await make_node()
    host, port = address(node)
    socks: list[socket.socket] = []
    refused: list[BaseException] = []

    def connect_all() -> None:
        for _ in range(200):
            s = socket.socket()
            s.settimeout(0.5)  # a dropped SYN is retried after 1 s: that is the failure
            socks.append(s)
            try:
                s.connect((host, port))
            except OSError as err:
                refused.append(err)
                return

    burst = threading.Thread(target=connect_all)
    burst.start()
    burst.join()  # the event loop is blocked meanwhile: nothing is accepted, all wait in the backlog
    try:
        assert not refused, f"connection {len(socks)} of 200 not queued: {refused[0]!r}"
    finally:
        for s in socks:
            s.close()
    async with NodeClient(timeout=10, retries=1) as client:
        assert (await client.health(node.url))["status"] == "ok"  # and the node serves on
