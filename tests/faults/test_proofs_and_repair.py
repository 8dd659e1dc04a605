"""Fault injection on a live network: kill a node, destroy a share on disk, advance epochs.

Invariants checked: the dataset stays retrievable and byte-identical; every node that lost or
corrupted its share is slashed; no honest node is; the repair agent restores full redundancy
(same share roots, new nodes) without the data key; value is conserved across escrow, fees, slashes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.chain import ChainConfig
from contracts.connection import TOKEN
from contracts.devchain import dev_account
from contracts.terms import Purpose
from datasov.demo import SAMPLE, _same_tree
from datasov.devnet import LocalNetwork
from erasure.pipeline import Layout
from market import buyer, key_agent, publisher
from market.keystore import Keystore
from market.repair import RepairAgent, RepairError
from market.reporter import FaultReporter
from storage_node.client import NodeClient, NodeUnavailable

pytestmark = pytest.mark.asyncio(loop_scope="function")
FEE = TOKEN // 100


async def publish(
    net: LocalNetwork, owner: Keystore, client: NodeClient, tmp_path: Path, layout: Layout, *, epochs: int
) -> publisher.Published:
    """The bundled sample, published by ``owner`` with a storage fee."""
    return await publisher.publish(
        SAMPLE,
        chain=net.chain,
        keystore=owner,
        directory=net.directory,
        client=client,
        staging=tmp_path / "staging",
        options=publisher.PublishOptions(layout=layout, epochs=epochs, fee_per_share_epoch=FEE),
    )


async def test_missed_proofs_are_slashed_and_repaired(tmp_path: Path) -> None:
    net = await LocalNetwork.start(tmp_path / "net", nodes=12, config=ChainConfig(epoch_blocks=60), background=False)
    chain = net.chain
    try:
        owner = Keystore.create(tmp_path / "owner", b"pw", account=dev_account(1))
        lab = Keystore.create(tmp_path / "lab", b"pw", account=dev_account(2))
        async with NodeClient(timeout=5, retries=1) as client:
            pub = await publish(net, owner, client, tmp_path, Layout(k=4, n=10), epochs=20)
            deal = pub.deal_id
            await net.prove_all()  # every node accepts its share
            holders = {i: net.node_of(pub.placements[i].address) for i in range(10)}
            stakes = {n.node.address: (await chain.get_operator(n.node.address)).stake for n in net.nodes}
            target = max([(await chain.get_share(deal, i)).active_from for i in range(10)])

            # faults: node of share 0 dies; share 1's file is overwritten on disk
            await net.kill(holders[0].index)
            store = holders[1].node.store
            assert store is not None
            path = store.share_path(pub.manifest_hash.hex(), 1)
            path.write_bytes(bytes(path.stat().st_size))

            await chain.advance_to_epoch(target)
            await net.prove_all()
            assert [await chain.is_proven(deal, i, target) for i in range(10)] == [False, False] + [True] * 8
            assert store.corruptions == 1  # found, quarantined, never proven as good

            await chain.advance_to_epoch(target + 1)
            reporter = FaultReporter(chain, owner.account)
            missed = await reporter.tick()
            assert sorted(m.share_index for m in missed) == [0, 1]
            assert await reporter.tick() == []  # once per epoch
            for n in net.nodes:
                slashed = n in (holders[0], holders[1])
                after = (await chain.get_operator(n.node.address)).stake
                assert (after < stakes[n.node.address]) == slashed, n.node.address  # no honest node slashed

            # still retrievable, byte-identical, from the 8 healthy shares
            license_id = await buyer.buy(chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
            await key_agent.KeyAgent(chain, owner, home=tmp_path / "owner").tick()
            await buyer.fetch(chain, lab, net.directory, client, license_id, tmp_path / "before-repair")
            assert _same_tree(SAMPLE, tmp_path / "before-repair")

            agent = RepairAgent(chain, owner.account, net.directory, client, workdir=tmp_path / "repair", threshold=10)
            (report,) = await agent.tick()
            assert sorted(report.unhealthy) == [0, 1]
            assert sorted(report.repaired) == [0, 1], report.failed
            new_providers = {(await chain.get_share(deal, i)).provider for i in (0, 1)}
            assert not new_providers & {holders[0].node.address, holders[1].node.address}
            for i in (0, 1):
                size, root = await client.head(report.repaired[i], pub.manifest_hash.hex(), i)
                assert (size, root) == (pub.manifest.share_size, pub.manifest.share_roots[i])
            healthy, bad = await agent.check(deal)
            assert len(healthy) == 10
            assert not bad
            assert (await agent.tick())[0].repaired == {}  # nothing left to do

            # the new holders accept and prove like everyone else
            await net.prove_all()
            nxt = max([(await chain.get_share(deal, i)).active_from for i in (0, 1)])
            await chain.advance_to_epoch(nxt)
            await net.prove_all()
            assert all([await chain.is_proven(deal, i, nxt) for i in range(10)])

            # the dead node comes back: its stale share is not trusted by anyone
            await net.restart(holders[0].index)
            for i in range(10):  # lose everything but 3 shares: repair must refuse, not invent data
                if i >= 3:
                    await net.kill(net.node_of((await chain.get_share(deal, i)).provider).index)
            with pytest.raises(RepairError, match="data lost"):
                await agent.repair(deal)
    finally:
        await net.stop()


async def test_value_is_conserved_across_fees_and_slashes(tmp_path: Path) -> None:
    net = await LocalNetwork.start(tmp_path / "net", nodes=6, config=ChainConfig(epoch_blocks=40), background=False)
    chain = net.chain
    try:
        owner = Keystore.create(tmp_path / "owner", b"pw", account=dev_account(1))
        market = chain.deployment.storage_market
        async with NodeClient(timeout=5, retries=1) as client:
            before = await chain.balance_of(market)
            pub = await publish(net, owner, client, tmp_path, Layout(k=2, n=5), epochs=6)
            escrow = 5 * 6 * FEE
            assert await chain.balance_of(market) == before + escrow
            await net.prove_all()
            target = max([(await chain.get_share(pub.deal_id, i)).active_from for i in range(5)])
            await net.kill(net.node_of(pub.placements[4].address).index)
            await chain.advance_to_epoch(target)
            await net.prove_all()
            await chain.advance_to_epoch(target + 1)
            await FaultReporter(chain, owner.account).tick()
            for n in net.nodes:
                if n.prover is not None and n.alive:
                    await n.prover.claim()
            # every token the market holds is accounted for: stakes + withdrawable balances + escrow left
            ops = [await chain.get_operator(n.node.address) for n in net.nodes]
            balances = [
                await chain.storage_balance(a) for a in {n.node.address for n in net.nodes} | {owner.account.address}
            ]
            deal = await chain.get_deal(pub.deal_id)
            burned = int(await chain.call(chain.storage_market.functions.burned()))  # the owner reported itself
            held = sum(o.stake for o in ops) + sum(balances) + deal.escrow - deal.paid + burned
            assert await chain.balance_of(market) == held
            assert sum(balances) > 0
    finally:
        await net.stop()


async def test_short_seeded_soak_keeps_every_invariant(tmp_path: Path) -> None:
    """Seed 55's first 8 rounds (bench.soak.schedule): publish, corrupt, publish, kill, restart, epoch,
    kill, fetch, then the closing epoch and a fetch of every dataset: each fault the soak injects, in
    two epochs (seed 7's 18 rounds were seven publishes and fetches, no fault at all). The long soak is
    `python -m bench.soak`."""
    from bench.soak import soak

    stats = await soak(tmp_path, rounds=8, nodes=12, seed=55)
    assert stats.rounds == 8
    assert stats.published >= 2
    assert stats.fetches >= 2
    assert min(stats.kills, stats.restarts, stats.corruptions) >= 1  # every fault was injected
    assert stats.datasets_lost == 0, stats.problems
    assert stats.bytes_wrong == 0
    assert not stats.honest_slashed, stats.problems  # every slash was for a window really missed
    assert stats.slashed_nodes == stats.faulty_nodes
    assert stats.faulty_nodes  # the corrupted share's holder missed its proof and was slashed
    assert stats.repairs >= 1  # and its share was rebuilt elsewhere
    assert stats.honest_epochs == 3
    assert stats.honest_slashes == 0, stats.problems  # every epoch reported, right after the proofs


async def test_the_soak_schedule_replays_from_its_seed() -> None:
    from bench.soak import EPOCH_EVERY, schedule

    first = schedule(7, 60)
    assert first == schedule(7, 60)  # two runs, one seed: one schedule
    assert first != schedule(8, 60)
    assert len(first) == 60
    assert [i for i, a in enumerate(first, 1) if a == "epoch"] == list(range(EPOCH_EVERY, 61, EPOCH_EVERY))


async def test_a_partitioned_node_is_routed_around_and_not_slashed(tmp_path: Path) -> None:
    """A node that cannot be reached but still holds its share: fetches go elsewhere, it keeps
    proving (so it is not slashed: it did not lose data), and repair does not move its share."""
    net = await LocalNetwork.start(tmp_path / "net", nodes=8, config=ChainConfig(epoch_blocks=60), background=False)
    chain = net.chain
    try:
        owner = Keystore.create(tmp_path / "owner", b"pw", account=dev_account(1))
        lab = Keystore.create(tmp_path / "lab", b"pw", account=dev_account(2))
        async with NodeClient(timeout=2, retries=1) as client:
            pub = await publish(net, owner, client, tmp_path, Layout(k=2, n=6), epochs=20)
            await net.prove_all()
            cut = net.node_of(pub.placements[0].address)
            stake = (await chain.get_operator(cut.node.address)).stake
            await net.partition(cut.index)
            with pytest.raises(NodeUnavailable):  # the port is closed
                await client.health(pub.placements[0].url)

            license_id = await buyer.buy(chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
            await key_agent.KeyAgent(chain, owner, home=tmp_path / "owner").tick()
            report = await buyer.fetch(chain, lab, net.directory, client, license_id, tmp_path / "out")
            assert _same_tree(SAMPLE, tmp_path / "out")
            assert 0 in report.unreachable
            assert 0 not in report.shares_used

            target = max([(await chain.get_share(pub.deal_id, i)).active_from for i in range(6)])
            await chain.advance_to_epoch(target)
            await net.prove_all()  # the partitioned node still reaches the chain and proves
            await chain.advance_to_epoch(target + 1)
            assert await FaultReporter(chain, owner.account).tick() == []
            assert (await chain.get_operator(cut.node.address)).stake == stake

            agent = RepairAgent(chain, owner.account, net.directory, client, workdir=tmp_path / "r", threshold=6)
            (repair,) = await agent.tick()
            assert 0 in repair.unhealthy
            assert repair.repaired == {}  # not faulty on-chain: its share stays where it is
            assert "not yet faulty" in repair.failed[0]

            await net.heal(cut.index)
            assert (await client.health(pub.placements[0].url))["status"] == "ok"
    finally:
        await net.stop()
