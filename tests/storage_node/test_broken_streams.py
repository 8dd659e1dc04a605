"""Corruption found after a 200 has started: the node cuts the connection, the client gives up at once."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from storage_node.client import BrokenResponse, NodeClient, NodeUnavailable
from storage_node.errors import NodeError

from .conftest import NodeFactory, publisher
from .test_api import BLOCK, DS, order_for

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_corruption_mid_stream_breaks_the_read_at_once(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    node = await make_node()
    data = os.urandom(6 * BLOCK)
    async with NodeClient(timeout=60, retries=3) as client:  # a hang would last a minute per try
        await client.put_share(node.url, order_for(node, data), publisher(), data)
        assert node.store is not None
        path = node.store.share_path(DS, 0)
        raw = bytearray(path.read_bytes())
        raw[4 * BLOCK + 7] ^= 0xFF  # block 4: found after blocks 0-3 went out with a 200
        path.write_bytes(bytes(raw))
        async with asyncio.timeout(20):  # only a guard against the hang; the read breaks as the node aborts
            with pytest.raises(BrokenResponse) as info:
                await client.get_share(node.url, DS, 0)
        assert isinstance(info.value, NodeUnavailable)  # the buyer counts the holder as failed (OSError to the decoder)
        with pytest.raises(NodeError):  # quarantined: the next read is refused cleanly
            await client.get_share(node.url, DS, 0)
        assert node.store.corruptions == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a corrupt share is a warning, once"
