"""A real network on a Hardhat node: six `datasov node run` processes, each on its own 127.0.x.1,
joined one by one and found through the chain and the DHT (bootstrap peers only, no node list). The first
and the seventh operator run their own commands (`datasov node init`, `datasov node join`, each a child
process); the other four make their homes and join with the same calls in this process, as `datasov devnet
up` does (an interpreter is ~2 CPU-seconds of imports; the commands' own processes are tested here and in
`datasov demo`'s outside node).

Publish 4-of-6, fetch, `kill -9` one node mid-epoch: it is reported and slashed; a seventh node joins
later and the repair agent, finding it through the chain and the DHT, rebuilds the lost share there;
an operator claims and withdraws its fees; the slashed one leaves and takes its stake back after the
exit delay. Every token is accounted for: the sum of all balances is the same before and after.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from web3 import AsyncWeb3

from contracts.chain import ChainConfig
from contracts.connection import ETHER, TOKEN
from contracts.devchain import DevChain, dev_account
from contracts.terms import Purpose
from datasov.demo import SAMPLE, _same_tree
from datasov.devnet import fund_operator
from datasov.devnet_processes import ProcessNetwork
from erasure.pipeline import Layout
from market import buyer, key_agent, publisher
from market.chain_directory import ChainDirectory
from market.discovery import NetworkDirectory, identify_with
from market.keystore import Keystore
from market.repair import RepairAgent
from market.reporter import FaultReporter
from storage_node.client import NodeClient
from storage_node.earnings import claim_all
from storage_node.identity import load_or_create_operator
from storage_node.p2p.host import P2PHost
from tests.support.hardhat import HardhatNode

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.asyncio(loop_scope="function")]
DEPLOYER, OWNER, LAB, REPORTER = dev_account(0), dev_account(1), dev_account(2), dev_account(4)
FEE = TOKEN // 100
EPOCH_BLOCKS = 20
CHILDREN = (0, 6)  # the operators whose `node init` and `node join` are child processes


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 60.0) -> None:
    """Wait for chain or network state (re-read every 0.2 s) to hold; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def hardhat_chain() -> AsyncIterator[tuple[DevChain, str]]:
    node = HardhatNode()
    try:
        w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(node.url))
        await w3.provider.make_request("hardhat_setBalance", [DEPLOYER.address, hex(1000 * ETHER)])  # type: ignore[arg-type]
        await w3.provider.disconnect()
        chain = await DevChain.deploy(node.url, DEPLOYER, config=ChainConfig(epoch_blocks=EPOCH_BLOCKS))
        await chain.fund_dev_accounts(8)
        yield chain, node.url
        await chain.close()
    finally:
        node.stop()


async def test_six_node_processes_publish_kill_slash_repair_claim_leave(
    hardhat_chain: tuple[DevChain, str], tmp_path: Path
) -> None:
    chain, url = hardhat_chain
    net = await ProcessNetwork.start(tmp_path / "net", nodes=0, chain=chain, rpc_url=url)
    host = P2PHost(create_new_key_pair(), listen="/ip4/127.0.9.1/tcp/0")
    try:
        # seven operators' homes (`datasov node init` for the first and the seventh); the faucet funds them
        # now, so the token sum covers them
        homes = list(await asyncio.gather(*(net.prepare_node(i, child=i in CHILDREN) for i in range(7))))
        for p in homes:
            await fund_operator(chain, p.operator)
        seventh = homes[6]
        operators = [load_or_create_operator(p.home) for p in homes]
        market, licenses = chain.deployment.storage_market, chain.deployment.license_manager
        holders = [a.address for a in operators] + [dev_account(i).address for i in range(8)]
        holders += [market, licenses, chain.deployment.registry]

        async def token_sum() -> int:
            return sum([await chain.balance_of(a) for a in holders])

        before = await token_sum()
        minimum = await chain.min_stake()
        for i, p in enumerate(homes[:6]):  # one by one (`datasov node join`, a child process, for the first)
            assert not (await chain.get_operator(p.operator)).registered
            joined = await net.join(p, fund=False, child=i in CHILDREN)
            assert joined["announced"]
            op = await chain.get_operator(p.operator)
            assert op.registered
            assert op.stake == int(joined["stake"]) == minimum
        await net.start_nodes(homes[:6])  # `datasov node run`, bootstrapping to the first
        assert [n.address for n in net.nodes] == [p.operator for p in homes[:6]]
        assert len({n.pid for n in net.nodes}) == 6
        host = P2PHost(create_new_key_pair(), listen="/ip4/127.0.9.1/tcp/0", bootstrap=net.bootstrap)
        await host.start()
        owner = Keystore.create(tmp_path / "owner", b"pw", account=OWNER)
        lab = Keystore.create(tmp_path / "lab", b"pw", account=LAB)
        async with NodeClient(timeout=30, retries=2) as http:
            directory = NetworkDirectory(ChainDirectory(chain, max_age=0), host, identify=identify_with(http))

            async def found(n: int) -> bool:
                return sum(v.in_dht and bool(v.reachable) for v in await directory.views()) == n

            await until(lambda: found(6), "six nodes found through the chain and the DHT")

            pub = await publisher.publish(
                SAMPLE,
                chain=chain,
                keystore=owner,
                directory=directory,
                client=http,
                staging=tmp_path / "staging",
                options=publisher.PublishOptions(layout=Layout(k=4, n=6), epochs=8, fee_per_share_epoch=FEE),
            )
            deal = pub.deal_id
            assert len({p.address for p in pub.placements.values()}) == 6

            async def accepted(indexes: range | list[int]) -> bool:
                return all([(await chain.get_share(deal, i)).accepted for i in indexes])

            await until(lambda: accepted(range(6)), "every node process to accept its share")
            license_id = await buyer.buy(chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
            await key_agent.KeyAgent(chain, owner, home=tmp_path / "owner").tick()
            await buyer.fetch(chain, lab, directory, http, license_id, tmp_path / "fetched")
            assert _same_tree(SAMPLE, tmp_path / "fetched")

            # kill -9 the holder of share 0, mid-epoch: the others go on proving
            victim = next(n for n in net.nodes if n.address == pub.placements[0].address)
            victim_op = load_or_create_operator(victim.home)
            stake = (await chain.get_operator(victim.address)).stake
            target = max([(await chain.get_share(deal, i)).active_from for i in range(6)])
            await chain.advance_to_epoch(target, offset=EPOCH_BLOCKS // 2)
            victim.kill()
            assert victim.proc is not None
            await victim.proc.wait()

            async def proven(epoch: int, indexes: list[int]) -> bool:
                return all([await chain.is_proven(deal, i, epoch) for i in indexes])

            # it may have proven this epoch before it died; the next one it cannot
            await chain.advance_to_epoch(target + 1)
            await until(lambda: proven(target + 1, [1, 2, 3, 4, 5]), "the live nodes to prove the next epoch")
            await chain.advance_to_epoch(target + 2)
            missed = await FaultReporter(chain, REPORTER, owner=OWNER.address).tick()
            assert [(m.share_index, m.provider) for m in missed] == [(0, victim.address)]
            assert (await chain.get_operator(victim.address)).stake < stake

            # a seventh node joins later (`node join`, `node run`); repair finds it through the chain and the DHT
            await net.add_node(seventh, fund=False)
            await until(lambda: found(6), "the new node in the DHT (and the killed one gone)")
            agent = RepairAgent(chain, owner.account, directory, http, workdir=tmp_path / "repair", threshold=6)
            (report,) = await agent.tick()
            assert list(report.repaired) == [0], report.failed
            assert (await chain.get_share(deal, 0)).provider == seventh.address
            await until(lambda: accepted([0]), "the new node to accept the rebuilt share")

            # an operator claims its proven fees and withdraws them
            earner = operators[[p.operator for p in homes].index(pub.placements[1].address)]
            wallet = await chain.balance_of(earner.address)
            _, claimed = await claim_all(chain, earner)
            owed = await chain.storage_balance(earner.address)
            assert owed >= claimed > 0
            await chain.withdraw(earner)
            assert await chain.balance_of(earner.address) == wallet + owed

            # the slashed operator leaves; its stake comes back only after the exit delay
            exit_epoch = await chain.leave(victim_op)
            left = (await chain.get_operator(victim.address)).stake
            await chain.advance_to_epoch(exit_epoch)
            wallet = await chain.balance_of(victim.address)
            await chain.withdraw_stake(victim_op, left)
            assert await chain.balance_of(victim.address) == wallet + left
        assert await token_sum() == before  # every token accounted for
    finally:
        await host.stop()  # a no-op if a join failed before it started
        await net.stop()
