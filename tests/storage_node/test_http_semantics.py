"""Statuses carry the headers they need (416, 405, 503), suffix ranges, and quiet logs for aborted uploads."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from storage_node.client import NodeClient
from storage_node.node import StorageNode

from .conftest import NodeFactory, publisher
from .test_api import BLOCK, DS, order_for

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def stored(
    make_node: NodeFactory, client: NodeClient, size: int = 2 * BLOCK, **config: object
) -> tuple[StorageNode, bytes]:
    node = await make_node(**config)
    data = os.urandom(size)
    await client.put_share(node.url, order_for(node, data), publisher(), data)
    return node, data


async def test_unsatisfiable_ranges_say_the_size(make_node: NodeFactory, client: NodeClient) -> None:
    node, data = await stored(make_node, client)
    url = NodeClient.share_url(node.url, DS, 0)
    for header in (f"bytes={len(data) + 5}-", "bytes=-0", "bytes=9-3", "bytes=abc", f"bytes={len(data)}-"):
        async with client.session.get(url, headers={"Range": header}) as resp:
            assert resp.status == 416, header
            assert resp.headers["Content-Range"] == f"bytes */{len(data)}", header
            assert (await resp.json())["error"] == "requested_range_not_satisfiable"
    async with client.session.get(url, headers={"Range": "bytes=-10"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}"
        assert await resp.read() == data[-10:]
    async with client.session.get(url, headers={"Range": f"bytes=-{len(data) * 2}"}) as resp:
        assert resp.status == 200  # a suffix longer than the share: all of it
        assert await resp.read() == data


async def test_method_not_allowed_lists_the_methods(make_node: NodeFactory, client: NodeClient) -> None:
    node = await make_node()
    async with client.session.post(NodeClient.share_url(node.url, DS, 0)) as resp:
        assert resp.status == 405
        assert set(resp.headers["Allow"].split(",")) >= {"GET", "PUT", "DELETE"}
        assert (await resp.json())["error"] == "method_not_allowed"


async def hold_upload_slot(node: StorageNode) -> asyncio.StreamWriter:
    """Start an upload that sends its headers and a little of its body, then waits (``max_uploads=1``)."""
    data = os.urandom(2 * BLOCK)
    headers = order_for(node, data, index=9).headers(publisher())
    host, port = node.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    head = f"PUT /v1/shares/{DS}/9 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + data[:1000])
    await writer.drain()
    await uploads_in_progress(node, 1)
    return writer


async def uploads_in_progress(node: StorageNode, count: int) -> None:
    """Wait until the node holds exactly ``count`` upload slots."""
    state = node.state
    assert state is not None
    async with state.upload_changes:
        await state.upload_changes.wait_for(lambda: state.active_uploads == count)


async def test_busy_answer_says_when_to_retry(make_node: NodeFactory, client: NodeClient) -> None:
    node = await make_node(max_uploads=1)
    writer = await hold_upload_slot(node)
    data = os.urandom(BLOCK)
    async with client.session.put(
        NodeClient.share_url(node.url, DS, 0), data=data, headers=order_for(node, data).headers(publisher())
    ) as resp:
        assert resp.status == 503
        assert int(resp.headers["Retry-After"]) >= 1
    writer.close()
    await writer.wait_closed()


async def test_an_aborted_upload_is_one_quiet_line(make_node: NodeFactory, caplog: pytest.LogCaptureFixture) -> None:
    node = await make_node(max_uploads=1)
    caplog.set_level(logging.DEBUG)
    writer = await hold_upload_slot(node)
    writer.transport.abort()  # the client goes away mid-body
    await uploads_in_progress(node, 0)  # the node has let the slot go
    for _ in range(5):
        await asyncio.sleep(0)  # let the handler's logging run
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]
    quiet = [r for r in caplog.records if "aborted" in r.getMessage()]
    assert [r.levelno for r in quiet] == [logging.INFO]
    assert node.store is not None
    assert await node.store.used() == 0
