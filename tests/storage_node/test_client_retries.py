"""NodeClient's retry loop: how many tries a read gets, whatever ``retries`` says (issue 15 item 4)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from storage_node.client import NodeClient, NodeUnavailable


async def _silent_server() -> tuple[asyncio.Server, list[asyncio.StreamWriter]]:
    """Accepts connections and never answers: every try times out."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    return await asyncio.start_server(silent, "127.0.0.1", 0), accepted


@pytest.mark.parametrize(("retries", "tries"), [(0, 1), (1, 1), (2, 2)])
async def test_a_read_is_tried_retries_times_and_at_least_once(retries: int, tries: int) -> None:
    server, accepted = await _silent_server()
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with NodeClient(timeout=0.1, retries=retries, backoff=0.001) as client:
            with pytest.raises(NodeUnavailable):
                await client.health(url)
        assert len(accepted) == tries
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_no_retries_still_reads_once() -> None:
    """retries=0 is a read without retries, not no read at all (it raised AssertionError)."""

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/v1/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with NodeClient(timeout=5, retries=0) as client:
            assert await client.health(f"http://127.0.0.1:{port}") == {"ok": True}
    finally:
        await runner.cleanup()
