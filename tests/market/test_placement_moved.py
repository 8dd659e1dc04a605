"""Placement asks the directory again about a node it could not reach (market.directory.moved): a
publisher whose cached chain view still has a node's old URL places on the URL it re-announced."""

from __future__ import annotations

import socket
from pathlib import Path

from contracts.announcements import Announcement
from contracts.chain import Chain
from market.chain_directory import ChainDirectory
from market.placement import PlacementPolicy, choose_nodes
from storage_node.client import NodeClient
from storage_node.membership import ensure_announced, join
from storage_node.node import NodeConfig, StorageNode

from .conftest import OPERATORS, STAKE


def _closed_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])  # nothing listens there once closed


async def test_a_node_unreachable_at_its_cached_url_is_placed_at_the_url_it_reannounced(
    chain: Chain, tmp_path: Path
) -> None:
    op = OPERATORS[3]
    home = tmp_path / "node"
    home.mkdir()
    (home / "operator.key").write_text(bytes(op.key).hex() + "\n")
    (home / "operator.key").chmod(0o600)
    node = StorageNode(NodeConfig(home=home, host="127.0.213.1", announce_at_start=False))
    await node.start()
    try:
        cid = chain.deployment.chain_id
        gone = f"http://127.0.213.1:{_closed_port('127.0.213.1')}"
        await join(chain, op, Announcement(operator=op.address, http_url=gone, chain_id=cid), stake=STAKE)
        directory = ChainDirectory(chain, max_age=3600)  # a long-lived client: its view is read once
        assert [n.url for n in await directory.nodes()] == [gone]
        await ensure_announced(chain, op, Announcement(operator=op.address, http_url=node.url, chain_id=cid))
        async with NodeClient(timeout=2, retries=1) as client:
            chosen, _ = await choose_nodes(
                directory, client, chain, 1, need_free=1, policy=PlacementPolicy(probe_timeout=2, seed=1)
            )
        assert [(n.address, n.url) for n in chosen] == [(op.address, node.url)]
    finally:
        await node.stop()
