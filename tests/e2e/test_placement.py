"""Placement on a real in-process network (nodes on 127.0.x.1): only nodes that qualify are chosen,
and when too few do, publish fails before anything is uploaded or registered, saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.announcements import Announcement
from contracts.chain import ChainConfig
from contracts.connection import TOKEN
from datasov.devnet import LocalNetwork
from erasure.pipeline import Layout
from market import publisher
from market.placement import PlacementPolicy, network_of
from storage_node.client import NodeClient

from .conftest import SAMPLE, keystore


async def test_placement_chooses_qualified_nodes_or_says_why_not(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    owner = keystore(tmp_path_factory, 1)
    net = await LocalNetwork.start(tmp_path / "net", nodes=4, config=ChainConfig(epoch_blocks=50), provers=False)
    try:
        greedy = await net.add_node(ask=TOKEN)  # 1 token per GiB per epoch
        liar, honest = net.nodes[3], net.nodes[0]
        # node 3 re-announces itself at node 0's URL: it answers as node 0's operator there
        lie = Announcement(
            operator=liar.node.address, http_url=honest.node.url, chain_id=net.chain.deployment.chain_id, issued_at=1
        )
        await net.chain.announce(liar.node.operator, lie.sign(liar.node.operator))
        await net.kill(2)
        options = publisher.PublishOptions(
            layout=Layout(k=1, n=2), placement=PlacementPolicy(max_ask=TOKEN // 2, seed=3), fee_per_share_epoch=1
        )
        async with NodeClient(timeout=2, retries=1) as client:
            datasets = int(await net.chain.call(net.chain.registry.functions.datasetCount()))
            with pytest.raises(publisher.NotEnoughNodes) as info:
                await publisher.publish(
                    SAMPLE,
                    chain=net.chain,
                    keystore=owner,
                    directory=net.directory,
                    client=client,
                    staging=tmp_path / "staging",
                    options=publisher.PublishOptions(
                        layout=Layout(k=1, n=3), placement=options.placement, fee_per_share_epoch=1
                    ),
                )
            err = info.value
            assert (err.needed, err.qualified) == (3, 2)
            assert "above the maximum fee" in err.rejected[greedy.node.address]
            assert "answers as" in err.rejected[liar.node.address]
            assert "unreachable" in err.rejected[net.nodes[2].node.address]
            assert "2 of 5 nodes qualify" in str(err)
            # nothing went on-chain or to a node
            assert int(await net.chain.call(net.chain.registry.functions.datasetCount())) == datasets
            for n in (net.nodes[0], net.nodes[1]):
                assert n.node.store is not None
                assert await n.node.store.records() == []

            pub = await publisher.publish(
                SAMPLE,
                chain=net.chain,
                keystore=owner,
                directory=net.directory,
                client=client,
                staging=tmp_path / "staging",
                options=options,
            )
        placed = {node.address for node in pub.placements.values()}
        assert placed == {net.nodes[0].node.address, net.nodes[1].node.address}
        assert len({network_of(node.url) for node in pub.placements.values()}) == 2
    finally:
        await net.stop()
