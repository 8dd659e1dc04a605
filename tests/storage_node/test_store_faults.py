"""A full disk answers 507 and health tells the disk's truth; a quarantined share is not a tombstone."""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from storage_node.client import NodeClient, RemoteError
from storage_node.store.shares import ShareStore, Upload

from .conftest import NodeFactory, publisher
from .test_api import BLOCK, DS, order_for

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_disk_full_is_507_and_leaves_nothing(
    make_node: NodeFactory, client: NodeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await make_node()
    data = os.urandom(3 * BLOCK)

    def no_space(self: Upload, chunk: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(Upload, "_absorb", no_space)
        with pytest.raises(RemoteError) as info:
            await client.put_share(node.url, order_for(node, data), publisher(), data)
    assert (info.value.status, info.value.code) == (507, "insufficient_storage")
    assert node.store is not None
    assert await node.store.records() == []
    assert not list((node.config.home / "tmp").iterdir())
    await client.put_share(node.url, order_for(node, data), publisher(), data)  # space again: accepted


async def test_health_reports_the_disk_when_it_is_smaller_than_the_capacity(
    make_node: NodeFactory, client: NodeClient
) -> None:
    node = await make_node(capacity=1 << 60)  # an exabyte configured, on a disk that is not
    health = await client.health(node.url)
    disk = shutil.disk_usage(node.config.home)  # read after the node's: other tests write meanwhile
    assert health["free"] <= disk.total < 1 << 60
    assert abs(health["free"] - disk.free) < 1 << 30  # the disk's free space, not the exabyte
    assert health["capacity"] == 1 << 60
    small = await make_node("small", capacity=10 * BLOCK)
    assert (await client.health(small.url))["free"] == 10 * BLOCK  # the configured bound when it is smaller


async def corrupt_and_quarantine(node_store: ShareStore, client: NodeClient, url: str) -> None:
    path = node_store.share_path(DS, 0)
    raw = bytearray(path.read_bytes())
    raw[5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(RemoteError) as info:
        await client.get_share(url, DS, 0)
    assert info.value.code == "share_corrupted"


async def test_a_quarantined_share_can_be_uploaded_again(make_node: NodeFactory, client: NodeClient) -> None:
    node = await make_node(capacity=4 * BLOCK)
    data = os.urandom(3 * BLOCK)
    owner = publisher()
    await client.put_share(node.url, order_for(node, data), owner, data)
    assert node.store is not None
    await corrupt_and_quarantine(node.store, client, node.url)
    health = await client.health(node.url)
    assert health["used"] == 0  # a quarantined share no longer holds the node's capacity
    assert health["corrupt_shares"] == 1
    await client.put_share(node.url, order_for(node, data), owner, data)  # the owner (or repair) re-uploads
    assert await client.get_share(node.url, DS, 0) == data
    assert (await client.health(node.url))["used"] == len(data)
    assert [r.state for r in await node.store.records()] == ["ok"]


async def test_the_corrupt_share_count_survives_a_restart(make_node: NodeFactory, client: NodeClient) -> None:
    node = await make_node("r")
    data = os.urandom(2 * BLOCK)
    await client.put_share(node.url, order_for(node, data), publisher(), data)
    assert node.store is not None
    await corrupt_and_quarantine(node.store, client, node.url)
    await node.stop()
    again = await make_node("r")
    assert (await client.health(again.url))["corrupt_shares"] == 1
    metrics = await (await client.session.get(again.url + "/metrics")).text()
    assert "datasov_corrupt_shares 1.0" in metrics
