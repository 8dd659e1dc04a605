"""A node provides every stored share in the DHT at once, but re-announces its free space at most once
per ``reannounce_every`` seconds: shares stored meanwhile share one trailing announcement (each
announcement is a DHT put and provide; one per stored share was a third of a node's CPU in a publish)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from contracts.announcements import Announcement
from storage_node.client import NodeClient

from .conftest import NodeFactory, publisher
from .test_api import order_for

pytestmark = pytest.mark.asyncio(loop_scope="function")


class FakeDHT:
    """Stands in for the libp2p host: records what the node asks of the DHT."""

    peer_id = ""

    def __init__(self) -> None:
        self.provided: list[tuple[str, int]] = []
        self.announced: list[int] = []
        self.announcing = asyncio.Event()
        self.three_provided = asyncio.Event()

    async def provide_share(self, dataset: str, index: int) -> None:
        self.provided.append((dataset, index))
        if len(self.provided) >= 3:
            self.three_provided.set()

    async def announce(self, signed: Any, *, free: int) -> None:
        self.announced.append(free)
        self.announcing.set()

    def announcement(self, **terms: Any) -> Announcement:
        return Announcement(**terms).with_time()

    async def stop(self) -> None:
        pass


async def _store(node: Any, client: NodeClient, index: int) -> None:
    data = os.urandom(4096)
    await client.put_share(node.url, order_for(node, data, index=index), publisher(), data)


async def _faked(node: Any) -> FakeDHT:
    fake = FakeDHT()
    node.p2p = fake
    node.announcement = node.make_announcement()
    await node.announce()  # as at start
    return fake


async def test_shares_stored_together_are_provided_at_once_and_reannounced_later(make_node: NodeFactory) -> None:
    node = await make_node(reannounce_every=3600.0)
    fake = await _faked(node)
    async with NodeClient(timeout=30, retries=1) as client:
        for index in range(3):
            await _store(node, client, index)
        await asyncio.wait_for(fake.three_provided.wait(), 30)  # provided in the background
    assert sorted(i for _, i in fake.provided) == [0, 1, 2]
    assert len(fake.announced) == 1  # the free space waits for the interval
    assert node._reannounce is not None
    assert not node._reannounce.done()  # one trailing announcement for all three


async def test_the_trailing_reannouncement_carries_the_free_space_after_the_stores(make_node: NodeFactory) -> None:
    node = await make_node(reannounce_every=0.2)
    fake = await _faked(node)
    assert node.store is not None
    fake.announcing.clear()
    async with NodeClient(timeout=30, retries=1) as client:
        await _store(node, client, 0)
    await asyncio.wait_for(fake.announcing.wait(), 30)
    assert fake.announced[-1] == await node.store.free() < fake.announced[0]
