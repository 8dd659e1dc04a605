"""A hostile-client phase on a live network: slowloris, trickled uploads and forged orders against
every holder at once, while an honest lab (from another loopback address) fetches the dataset.

Invariants: the honest fetch succeeds and is byte-identical during the attack; every forged order is
refused (403) before its body is read; connections over a node's per-address cap are answered 503 and
counted; nothing the attackers sent is stored.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest
from eth_account import Account

from contracts.chain import ChainConfig
from contracts.connection import TOKEN
from contracts.devchain import dev_account
from contracts.terms import Purpose
from datasov.demo import SAMPLE, _same_tree
from datasov.devnet import LocalNetwork
from erasure.pipeline import Layout
from market import buyer, key_agent, publisher
from market.keystore import Keystore
from storage_node.client import NodeClient
from storage_node.orders import StorageOrder

pytestmark = pytest.mark.asyncio(loop_scope="function")
ATTACKER, HONEST = "127.0.0.1", "127.0.0.2"
HELD_PER_NODE = 270  # over the default per-address cap of 256


def honest_client() -> NodeClient:
    client = NodeClient(timeout=10, retries=2)
    client._session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(HONEST, 0)), timeout=client._timeout
    )
    return client


def hostport(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def slowloris(url: str, count: int) -> list[asyncio.StreamWriter]:
    writers = []
    for i in range(count):
        _, writer = await asyncio.open_connection(*hostport(url), local_addr=(ATTACKER, 0))
        if i % 2:
            writer.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        writers.append(writer)
    return writers


async def forged_trickle(session: aiohttp.ClientSession, url: str, order: StorageOrder, size: int) -> int:
    """A PUT with an order signed by a random key whose body would arrive a byte at a time."""

    async def trickle():  # type: ignore[no-untyped-def]
        for _ in range(size):
            yield b"\0"
            await asyncio.sleep(0.05)

    headers = {**order.headers(Account.create()), "Content-Length": str(size)}
    target = NodeClient.share_url(url, order.dataset, order.index)
    try:
        async with session.put(target, data=trickle(), headers=headers) as resp:
            return resp.status
    except aiohttp.ClientError:  # the node answered and closed before the body was sent
        return 403


async def test_honest_fetches_succeed_under_hostile_clients(tmp_path: Path) -> None:
    net = await LocalNetwork.start(tmp_path / "net", nodes=6, config=ChainConfig(epoch_blocks=40), background=False)
    chain = net.chain
    held: list[asyncio.StreamWriter] = []
    try:
        owner = Keystore.create(tmp_path / "owner", b"pw", account=dev_account(1))
        lab = Keystore.create(tmp_path / "lab", b"pw", account=dev_account(2))
        async with honest_client() as client:
            pub = await publisher.publish(
                SAMPLE,
                chain=chain,
                keystore=owner,
                directory=net.directory,
                client=client,
                staging=tmp_path / "staging",
                options=publisher.PublishOptions(layout=Layout(k=2, n=5), epochs=6, fee_per_share_epoch=TOKEN // 100),
            )
            license_id = await buyer.buy(chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
            await key_agent.KeyAgent(chain, owner, home=tmp_path / "owner").tick()
            holders = [p.url for p in pub.placements.values()]
            used = {n.node.address: await n.node.store.used() for n in net.nodes if n.node.store}

            # the attack: every holder is slowlorised past its per-address cap...
            for url in holders:
                held += await slowloris(url, HELD_PER_NODE)
            # ...and flooded with forged orders for the deal's shares, bodies trickled
            forged = [
                StorageOrder.new(
                    node=p.address,
                    dataset=pub.manifest_hash.hex(),
                    index=i,
                    share_root=os.urandom(32),
                    size=pub.manifest.share_size,
                    leaf_size=pub.manifest.leaf_size,
                    block_size=pub.manifest.block_size,
                    deal_id=pub.deal_id,
                )
                for i, p in pub.placements.items()
                for _ in range(6)
            ]
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.3", 0))) as bad:
                statuses = asyncio.gather(
                    *(forged_trickle(bad, pub.placements[o.index].url, o, o.size) for o in forged)
                )
                # meanwhile the honest lab fetches, byte-identical
                report = await buyer.fetch(chain, lab, net.directory, client, license_id, tmp_path / "during")
                assert _same_tree(SAMPLE, tmp_path / "during")
                assert report.bytes_written > 0
                async with asyncio.timeout(60):
                    assert set(await statuses) == {403}
            for p in pub.placements.values():
                node = net.node_of(p.address).node
                assert node.gate is not None
                assert node.gate.refused_total >= HELD_PER_NODE - node.gate.max_per_ip
            assert {n.node.address: await n.node.store.used() for n in net.nodes if n.node.store} == used
    finally:
        for writer in held:
            writer.close()
        await net.stop()
