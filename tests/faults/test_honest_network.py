"""An always-honest network, reported on every epoch: nobody may be slashed (issue 11, item 1).

Every node proves as soon as each epoch's seed is readable, and the owner's fault reporter runs
right after the proofs, every epoch: it always looks at the previous epoch once the current one is
proven, the order in which a reporter used to slash honest nodes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.chain import ChainConfig
from contracts.devchain import dev_account
from datasov.devnet import LocalNetwork
from erasure.pipeline import Layout
from market.keystore import Keystore
from market.reporter import FaultReporter
from storage_node.client import NodeClient

from .test_proofs_and_repair import publish

pytestmark = pytest.mark.asyncio(loop_scope="function")
EPOCHS = 8


async def test_honest_nodes_reported_every_epoch_are_never_slashed(tmp_path: Path) -> None:
    net = await LocalNetwork.start(tmp_path / "net", nodes=6, config=ChainConfig(epoch_blocks=30), background=False)
    chain = net.chain
    try:
        owner = Keystore.create(tmp_path / "owner", b"pw", account=dev_account(1))
        async with NodeClient(timeout=5, retries=1) as client:
            pub = await publish(net, owner, client, tmp_path, Layout(k=2, n=5), epochs=EPOCHS + 4)
            await net.prove_all()  # every node accepts its share
            stakes = {n.node.address: (await chain.get_operator(n.node.address)).stake for n in net.nodes}
            first = max([(await chain.get_share(pub.deal_id, i)).active_from for i in range(5)])
            reporter = FaultReporter(chain, owner.account)
            for epoch in range(first, first + EPOCHS):
                await chain.advance_to_epoch(epoch)
                await net.prove_all()
                assert all([await chain.is_proven(pub.deal_id, i, epoch) for i in range(5)])
                assert await reporter.tick() == []
            for n in net.nodes:
                assert (await chain.get_operator(n.node.address)).stake == stakes[n.node.address]
            assert await chain.healthy_shares(pub.deal_id) == 5
            assert await chain.is_servable(pub.dataset_id)
    finally:
        await net.stop()
