"""NetworkDirectory over real nodes and a real DHT on loopback: the chain says who, the DHT what is fresh."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair

from contracts.announcements import Announcement
from contracts.chain import Chain
from datasov.directory import DHTDirectory, open_directory
from market.chain_directory import ChainDirectory
from market.directory import NodeInfo, StaticDirectory, moved
from market.discovery import NetworkDirectory, identify_with
from storage_node.client import NodeClient
from storage_node.membership import join
from storage_node.node import NodeConfig, StorageNode
from storage_node.p2p.host import P2PHost

from .conftest import OPERATORS, STAKE


@pytest.fixture(scope="module")
async def dht_nodes(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[list[StorageNode], P2PHost]]:
    """Four nodes on 127.0.x.1 (x = 1..4), each bootstrapping to the first, and a client host."""
    tmp_path = tmp_path_factory.mktemp("dht")
    nodes: list[StorageNode] = []
    client = None
    try:
        for x in range(1, 5):
            boot = tuple(nodes[0].p2p.full_addrs) if nodes and nodes[0].p2p else ()
            config = NodeConfig(
                home=tmp_path / f"n{x}", host=f"127.0.{x}.1", p2p_listen=f"/ip4/127.0.{x}.1/tcp/0", bootstrap=boot
            )
            node = StorageNode(config)
            await node.start()
            await node.announced()
            nodes.append(node)
        assert nodes[0].p2p is not None
        for node in nodes[1:]:
            await node.announce()  # again, now that every peer is up (the first announced to nobody)
        client = P2PHost(create_new_key_pair(), listen="/ip4/127.0.9.1/tcp/0", bootstrap=nodes[0].p2p.full_addrs)
        await client.start()
        yield nodes, client
    finally:
        if client is not None:
            await client.stop()
        for node in nodes:
            await node.stop()


async def test_chain_and_dht_combined_liars_and_unstaked_ignored(
    dht_nodes: tuple[list[StorageNode], P2PHost], caplog: pytest.LogCaptureFixture
) -> None:
    (honest, liar, unstaked, other), client = dht_nodes
    caplog.set_level(logging.WARNING, logger="datasov")
    chain = StaticDirectory(
        [
            NodeInfo(honest.address, honest.url),
            NodeInfo(liar.address, "http://127.0.2.1:1"),  # the chain says one URL, its DHT record another
            NodeInfo(other.address, other.url),
        ]
    )
    async with NodeClient(timeout=2, retries=1) as http:
        directory = NetworkDirectory(chain, client, identify=identify_with(http))
        views = {v.address: v for v in await directory.views()}
    assert set(views) == {honest.address, liar.address, other.address}  # the unstaked node is not listed
    good = views[honest.address]
    assert honest.p2p is not None
    assert (good.peer_id, good.reachable, good.in_dht) == (honest.p2p.peer_id, True, True)
    assert good.info.multiaddrs == tuple(a.split("/p2p/")[0] for a in honest.p2p.addrs)
    assert good.free is not None
    assert good.free > 0
    assert views[liar.address].peer_id == ""  # its record was not used
    assert views[liar.address].url == "http://127.0.2.1:1"
    assert views[liar.address].reachable is False
    warnings = " | ".join(r.getMessage() for r in caplog.records)
    assert f"ignoring node {liar.address}: its DHT record says {liar.url}" in warnings
    assert f"ignoring node {unstaked.address}: DHT record of peer" in warnings
    assert await directory.url_of(honest.address) == honest.url


async def test_a_node_answering_as_another_operator_is_left_out(
    dht_nodes: tuple[list[StorageNode], P2PHost], caplog: pytest.LogCaptureFixture
) -> None:
    (a, b, _, _), client = dht_nodes
    caplog.set_level(logging.WARNING, logger="datasov")
    chain = StaticDirectory([NodeInfo(a.address, a.url), NodeInfo(b.address, a.url)])  # b claims a's node
    async with NodeClient(timeout=2, retries=1) as http:
        directory = NetworkDirectory(chain, client, identify=identify_with(http))
        assert [n.address for n in await directory.nodes()] == [a.address]
    assert any(f"the node at {a.url} answers as operator {a.address}" in r.getMessage() for r in caplog.records)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_clients_use_the_chain_and_the_dht_when_the_network_has_bootstrap_peers(
    chain: Chain, caplog: pytest.LogCaptureFixture
) -> None:
    """datasov.directory.open_directory (what the CLI's open_chain builds): the chain lists who is
    staked, the DHT adds what is fresh; no bootstrap peers, or none answering: the chain alone."""
    first = P2PHost(create_new_key_pair(), listen="/ip4/127.0.1.1/tcp/0")
    await first.start()
    hosts = [first, P2PHost(create_new_key_pair(), listen="/ip4/127.0.2.1/tcp/0", bootstrap=first.full_addrs)]
    try:
        await hosts[1].start()
        for x, (host, op) in enumerate(zip(hosts, OPERATORS[:2], strict=True), start=1):
            terms = host.announcement(
                operator=op.address, http_url=f"http://127.0.{x}.1:7401", chain_id=chain.deployment.chain_id, capacity=9
            )
            await join(chain, op, terms, stake=STAKE)
            await host.announce(terms.sign(op), free=5 + x)
        quiet = OPERATORS[2]  # staked and announced on-chain, no DHT record
        plain = Announcement(
            operator=quiet.address,
            http_url="http://127.0.3.1:7401",
            chain_id=chain.deployment.chain_id,
            peer_id=P2PHost(create_new_key_pair()).peer_id,
            multiaddrs=("/ip4/127.0.3.1/tcp/9",),
        )
        await join(chain, quiet, plain, stake=STAKE)

        async with open_directory(chain, hosts[0].full_addrs) as directory:
            assert isinstance(directory, DHTDirectory)
            assert directory._host is None  # no libp2p host until nodes are asked for
            network = await directory.network()
            assert network is not None
            views = {v.address: v for v in await network.views()}
            assert [n.address for n in await directory.nodes()] == list(views)  # reused within max_age
        assert set(views) == {op.address for op in OPERATORS[:3]}
        for x, (host, op) in enumerate(zip(hosts, OPERATORS[:2], strict=True), start=1):
            assert (views[op.address].peer_id, views[op.address].free) == (host.peer_id, 5 + x)
        assert not views[quiet.address].in_dht

        async with open_directory(chain, ()) as directory:
            assert isinstance(directory, ChainDirectory)
        gone = f"/ip4/127.0.4.1/tcp/1/p2p/{P2PHost(create_new_key_pair()).peer_id}"
        with caplog.at_level(logging.WARNING, logger="datasov.dht"):
            async with open_directory(chain, [gone]) as directory:
                assert len(await directory.nodes()) == 3
                assert isinstance(directory, DHTDirectory)
                assert await directory.network() is None
        assert "cannot join the DHT" in caplog.text
    finally:
        await asyncio.gather(*(h.stop() for h in hosts))
        gc.collect()  # the sockets py-libp2p leaves to the collector are finalized under this test's filter


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_client_on_the_chain_finds_a_node_that_moved_through_its_dht_record(
    chain: Chain, caplog: pytest.LogCaptureFixture
) -> None:
    """Chain first: the URL is the chain's and no libp2p host runs until the caller says that URL
    does not answer; then the node's own DHT record, a newer announcement its operator signed (its
    on-chain re-announcement not sent yet), gives where it moved. A newer record for another chain
    moves nothing; a later on-chain announcement wins again."""
    first = P2PHost(create_new_key_pair(), listen="/ip4/127.0.1.1/tcp/0")
    await first.start()
    hosts = [first, P2PHost(create_new_key_pair(), listen="/ip4/127.0.2.1/tcp/0", bootstrap=first.full_addrs)]
    try:
        await hosts[1].start()
        cid = chain.deployment.chain_id
        olds = []
        for x, (host, op) in enumerate(zip(hosts, OPERATORS[:2], strict=True), start=1):
            old = host.announcement(operator=op.address, http_url=f"http://127.0.{x}.1:7401", chain_id=cid, capacity=9)
            await join(chain, op, old, stake=STAKE)
            olds.append(old)
        mover, other = OPERATORS[:2]
        later = olds[0].issued_at + 60
        await hosts[0].announce(replace(olds[0], http_url="http://127.0.1.1:7402", issued_at=later).sign(mover), free=7)
        elsewhere = replace(olds[1], http_url="http://127.0.2.1:7402", chain_id=cid + 1, issued_at=later)
        await hosts[1].announce(elsewhere.sign(other), free=7)

        async with open_directory(chain, hosts[0].full_addrs) as directory:
            assert isinstance(directory, DHTDirectory)
            assert await directory.url_of(mover.address) == "http://127.0.1.1:7401"
            assert [n.url for n in await directory.nodes()] == ["http://127.0.1.1:7401", "http://127.0.2.1:7401"]
            assert directory._host is None  # the chain answered: no DHT joined
            with caplog.at_level(logging.INFO, logger="datasov"):
                assert await moved(directory, mover.address, "http://127.0.1.1:7401") == "http://127.0.1.1:7402"
            assert directory._host is not None
            assert f"node {mover.address} moved" in caplog.text
            assert await directory.url_of(mover.address) == "http://127.0.1.1:7402"
            assert await moved(directory, other.address, "http://127.0.2.1:7401") is None  # another chain's record
            assert await directory.url_of(other.address) == "http://127.0.2.1:7401"
            assert {n.address: n.url for n in await directory.nodes()} == {
                mover.address: "http://127.0.1.1:7402",
                other.address: "http://127.0.2.1:7401",
            }
            again = replace(olds[0], http_url="http://127.0.1.1:7403", issued_at=later + 60)
            await chain.announce(mover, again.sign(mover))  # the chain's newer announcement wins
            assert await moved(directory, mover.address, "http://127.0.1.1:7402") == "http://127.0.1.1:7403"
            assert await directory.url_of(mover.address) == "http://127.0.1.1:7403"
    finally:
        await asyncio.gather(*(h.stop() for h in hosts))
        gc.collect()  # the sockets py-libp2p leaves to the collector are finalized under this test's filter
