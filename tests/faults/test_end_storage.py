"""Ending storage slashes nobody; a delete order the chain does not back is refused (issue 11, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.chain import ChainConfig
from contracts.devchain import dev_account
from datasov.devnet import LocalNetwork
from erasure.pipeline import Layout
from market import publisher
from market.keystore import Keystore
from market.reporter import FaultReporter
from storage_node.client import NodeClient, RemoteError

from .test_proofs_and_repair import publish

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest.mark.parametrize("proved_first", [False, True], ids=["before-proofs", "after-proofs"])
async def test_end_storage_slashes_nobody(tmp_path: Path, proved_first: bool) -> None:
    net = await LocalNetwork.start(tmp_path / "net", nodes=6, config=ChainConfig(epoch_blocks=30), background=False)
    chain = net.chain
    try:
        owner = Keystore.create(tmp_path / "owner", b"pw", account=dev_account(1))
        async with NodeClient(timeout=5, retries=1) as client:
            pub = await publish(net, owner, client, tmp_path, Layout(k=2, n=5), epochs=10)
            await net.prove_all()  # accept
            first = max([(await chain.get_share(pub.deal_id, i)).active_from for i in range(5)])
            await chain.advance_to_epoch(first)
            await net.prove_all()
            await chain.advance_to_epoch(first + 1)  # the storage ends early in an epoch...
            if proved_first:  # ...before or after the nodes proved it
                await net.prove_all()
            stakes = {n.node.address: (await chain.get_operator(n.node.address)).stake for n in net.nodes}
            result = await publisher.end_storage(chain, owner.account, net.directory, pub.dataset_id)
            assert sorted(result["deleted"]) == list(range(5)), result["pending"]
            for n in net.nodes:
                assert n.node.store is not None
                assert await n.node.store.records() == []
            reporter = FaultReporter(chain, owner.account)
            for epoch in (first + 1, first + 2, first + 3):
                await chain.advance_to_epoch(epoch)
                await net.prove_all()
                assert await reporter.tick() == []
            for n in net.nodes:
                assert (await chain.get_operator(n.node.address)).stake == stakes[n.node.address]
            await chain.settle_deal(owner.account, pub.deal_id)
            for n in net.nodes:
                assert (await chain.get_operator(n.node.address)).active_shares == 0
    finally:
        await net.stop()


async def test_a_delete_order_without_termination_is_refused(tmp_path: Path) -> None:
    net = await LocalNetwork.start(tmp_path / "net", nodes=6, config=ChainConfig(epoch_blocks=30), background=False)
    chain = net.chain
    try:
        owner = Keystore.create(tmp_path / "owner", b"pw", account=dev_account(1))
        async with NodeClient(timeout=5, retries=1) as client:
            pub = await publish(net, owner, client, tmp_path, Layout(k=2, n=5), epochs=10)
            await net.prove_all()
            holder = pub.placements[0]
            manifest_hash = pub.manifest_hash.hex()
            with pytest.raises(RemoteError) as refused:
                await client.delete_share(holder.url, manifest_hash, 0, holder.address, owner.account)
            assert refused.value.status == 409
            assert "still owed" in str(refused.value)
            node = net.node_of(holder.address)
            assert node.node.store is not None
            assert [r.idx for r in await node.node.store.records()] == [0]
            first = (await chain.get_share(pub.deal_id, 0)).active_from
            await chain.advance_to_epoch(first)
            await net.prove_all()
            assert await chain.is_proven(pub.deal_id, 0, first)  # it still holds and proves the share
    finally:
        await net.stop()
