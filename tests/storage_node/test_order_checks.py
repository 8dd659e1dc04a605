"""Orders are refused by their cheapest failing check: layout bounds, then signature and nonce, then the chain."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from storage_node.client import NodeClient, RemoteError

from .conftest import NodeFactory, publisher
from .test_api import BLOCK, DS, order_for

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest.mark.parametrize(
    ("leaf_size", "block_size"),
    [
        (1, 1 << 30),  # one-byte leaves, 1 GiB blocks: a 10-byte read would hash a gibibyte
        (1024, 32 << 20),  # blocks above the pipeline's 16 MiB
        (1, 1024),  # leaves below the minimum
        (1 << 20, 1 << 20),  # leaves above the maximum
        (1000, 3000),  # not leaf times a power of two
        (1024, 0),
        (0, 1024),
        (-1024, 4096),
    ],
)
async def test_unbounded_or_invalid_layouts_are_refused_before_anything(
    make_node: NodeFactory, client: NodeClient, leaf_size: int, block_size: int
) -> None:
    node = await make_node()
    data = os.urandom(BLOCK)
    order = replace(order_for(node, data), leaf_size=leaf_size, block_size=block_size)
    with pytest.raises(RemoteError) as info:
        await client.put_share(node.url, order, publisher(), data)
    assert (info.value.status, info.value.code) == (422, "bad_layout")
    assert node.store is not None
    assert await node.store.records() == []
    await client.put_share(node.url, order_for(node, data), publisher(), data)  # a sane order still goes in
    assert await client.get_share(node.url, DS, 0) == data
