"""The local network: an embedded chain and N storage nodes, in one process or one process per node.

:class:`~datasov.devnet_processes.ProcessNetwork` (``datasov devnet up``, the CLI tests) runs each node as its own
``datasov node run`` child on its own 127.0.x.1 (see :mod:`datasov.procnet`), talking to the chain
over JSON-RPC and to each other over libp2p, bootstrapped to the first node; each node joins the
way an outside operator's does, with a ``datasov node join`` child process, on a home made as
``datasov node init`` makes it (in the devnet's process: :func:`datasov.procnet.make_node_home`;
:meth:`ProcessNetwork.add_node` runs ``node init`` itself), a bounded number of children at once.
:class:`LocalNetwork` is what ``datasov demo`` and the end-to-end tests run (Tahoe's no_network grid):
a fresh in-process EVM with the contracts deployed, N real nodes (real sockets, real files under
``home``), each with its own operator key, funded, and joined on-chain the way ``datasov node join``
joins (stake, then a signed announcement: :func:`storage_node.membership.join`), authorising orders
against the chain and running its prover. Node i listens on 127.0.(i+1).1, so that every node is on
its own /24 and placement's distinct-network rule holds on one machine. Clients find the nodes
through :attr:`LocalNetwork.directory`, a :class:`~market.chain_directory.ChainDirectory`.
Nodes can be killed and restarted to inject faults.

``devnet up`` also serves the chain over JSON-RPC on loopback (:mod:`datasov.rpc`) and writes
``devnet.json`` (RPC URL, contract addresses, bootstrap peers; the node list in it is informational:
clients find the nodes on the chain) for the other commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from contracts.chain import ChainConfig
from contracts.connection import DEFAULT_MIN_STAKE, ETHER
from contracts.devchain import DevChain, dev_account
from contracts.loop import Ticking
from market.chain_directory import ChainDirectory
from market.directory import NodeInfo, StaticDirectory
from storage_node.authorize import DealAuthorizer
from storage_node.identity import load_or_create_operator
from storage_node.membership import join
from storage_node.node import NodeConfig, StorageNode
from storage_node.prover import Prover

from .nodehome import NodeHome, announcement_for
from .procnet import (
    node_host,
)

log = logging.getLogger("datasov.devnet")

DEVNET_FILE = "devnet.json"
OPERATOR_ETH = 10 * ETHER
DEFAULT_CONFIG = ChainConfig()


async def stop_task(task: asyncio.Task[None], worker: Ticking | None = None) -> None:
    """Stop a background loop: flag it, cancel it, and wait for it to end."""
    if worker is not None:
        worker.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def fund_operator(chain: DevChain, address: str) -> None:
    """The devnet faucet (dev account 0): ETH for gas and ten minimum stakes of tokens."""
    funder = dev_account(0)
    stake = int(await chain.call(chain.storage_market.functions.minStake())) or DEFAULT_MIN_STAKE
    await chain.send_eth(funder, address, OPERATOR_ETH)
    await chain.mint(funder, address, 10 * stake)


async def stake_operators(chain: DevChain, operators: list[LocalAccount]) -> None:
    """Fund and register each operator not registered yet, with the minimum stake (in-process nodes)."""
    stake = int(await chain.call(chain.storage_market.functions.minStake())) or DEFAULT_MIN_STAKE
    for operator in operators:
        op = await chain.get_operator(operator.address)
        if op.registered:
            continue
        await fund_operator(chain, operator.address)
        await chain.register_operator(operator, stake)


@dataclass
class NetworkNode:
    index: int
    home: Path
    node: StorageNode
    prover: Prover | None = None
    task: asyncio.Task[None] | None = None
    alive: bool = False
    ask: int = 0  # token base units per GiB per epoch, announced and enforced

    @property
    def info(self) -> NodeInfo:
        return NodeInfo(self.node.address, self.node.url)


@dataclass
class LocalNetwork:
    home: Path
    chain: DevChain
    nodes: list[NetworkNode] = field(default_factory=list)
    prover_poll: float = 0.2
    capacity: int = 1 << 30
    background: bool = True
    _ports: dict[int, int] = field(default_factory=dict)
    _directory: ChainDirectory | None = None

    @classmethod
    async def start(
        cls,
        home: Path,
        *,
        nodes: int = 12,
        chain: DevChain | None = None,
        config: ChainConfig = DEFAULT_CONFIG,
        capacity: int = 1 << 30,
        prover_poll: float = 0.2,
        provers: bool = True,
        background: bool = True,
    ) -> LocalNetwork:
        """``provers``: give each node a prover; ``background``: run them on their own (else the
        caller drives them with :meth:`prove_all`)."""
        """A chain (embedded unless given) and ``nodes`` staked nodes, all started."""
        chain = chain or await DevChain.embedded(dev_accounts=12, config=config)
        net = cls(home, chain, prover_poll=prover_poll, capacity=capacity, background=background)
        for _ in range(nodes):
            await net.add_node(provers=provers)
        return net

    async def add_node(self, *, provers: bool = True, ask: int = 0) -> NetworkNode:
        """Start one more node and join it (a node joining a running network); returns it."""
        index = len(self.nodes)
        n = NetworkNode(index, self.home / "nodes" / f"node-{index:02d}", self._make_node(index, ask=ask), ask=ask)
        self.nodes.append(n)
        await self._fund(n.node)
        await self._run(n, provers=provers)
        await self._join(n)
        return n

    def _make_node(self, index: int, home: Path | None = None, *, ask: int = 0) -> StorageNode:
        home = home or self.home / "nodes" / f"node-{index:02d}"
        config = NodeConfig(
            home=home, host=node_host(index), capacity=self.capacity, port=self._ports.get(index, 0), gc_interval=0
        )
        address = load_or_create_operator(home).address
        return StorageNode(config, authorize=DealAuthorizer(self.chain, address, ask=ask), chain=self.chain)

    async def _fund(self, node: StorageNode) -> None:
        funder = dev_account(0)
        if (await self.chain.get_operator(node.address)).registered:
            return
        stake = await self.chain.min_stake() or DEFAULT_MIN_STAKE
        await self.chain.send_eth(funder, node.address, OPERATOR_ETH)
        await self.chain.mint(funder, node.address, 10 * stake)

    async def _join(self, n: NetworkNode) -> None:
        """What ``datasov node join`` does, with the node's started URL."""
        terms = NodeHome.load(n.home)
        announcement = announcement_for(
            n.home,
            terms,
            operator=n.node.address,
            chain_id=self.chain.deployment.chain_id,
            url=n.node.url,
            peer_id="",
        )
        await join(self.chain, n.node.operator, announcement)

    async def _run(self, n: NetworkNode, *, provers: bool = True) -> None:
        await n.node.start()
        self._ports[n.index] = int(n.node.url.rsplit(":", 1)[1])
        NodeHome(n.node.config.host, self._ports[n.index], self.capacity, ask=n.ask).save(
            n.home
        )  # for `datasov node status`
        n.alive = True
        if provers:
            assert n.node.store is not None
            metrics = n.node.state.metrics if n.node.state is not None else None
            n.prover = Prover(self.chain, n.node.operator, n.node.store, poll=self.prover_poll, metrics=metrics)
            if self.background:
                n.task = asyncio.create_task(n.prover.run(), name=f"prover-{n.index}")

    @property
    def directory(self) -> ChainDirectory:
        """The nodes as a client finds them: their on-chain announcements (dead or alive: whether
        they answer is another matter). Re-read on every use (``max_age`` 0)."""
        if self._directory is None:
            self._directory = ChainDirectory(self.chain, max_age=0)
        return self._directory

    @property
    def static_directory(self) -> StaticDirectory:
        """Every node's current URL, as a fixed list (for tests of the directory-less paths)."""
        return StaticDirectory(n.info for n in self.nodes)

    def node_of(self, address: str) -> NetworkNode:
        for n in self.nodes:
            if n.node.address.lower() == address.lower():
                return n
        raise KeyError(address)

    async def kill(self, index: int) -> None:
        """Stop a node abruptly: its port closes, its prover stops (its files stay on disk)."""
        n = self.nodes[index]
        if n.task is not None:
            await stop_task(n.task, n.prover)
            n.task = None
        await n.node.stop()
        n.alive = False

    async def restart(self, index: int) -> None:
        """Start a killed node again on the same port, with the same home (recovery runs)."""
        n = self.nodes[index]
        n.node = self._make_node(index, n.home, ask=n.ask)
        await self._run(n)

    async def partition(self, index: int) -> None:
        """Cut a node off the network: its HTTP port closes, but it keeps its data and keeps proving."""
        await self.nodes[index].node.close_http()

    async def heal(self, index: int) -> None:
        await self.nodes[index].node.open_http()

    async def prove_all(self) -> None:
        """One prover round on every live node, now (tests drive epochs with this)."""
        for n in self.nodes:
            if n.alive and n.prover is not None:
                await n.prover.tick()

    def describe(self, rpc_url: str | None = None) -> dict[str, Any]:
        return {
            "version": 1,
            "rpc": rpc_url,
            "deployment": self.chain.deployment.to_json(),
            "bootstrap": [],  # libp2p bootstrap peers (none in-process)
            "nodes": self.static_directory.to_json(),  # informational: clients read the chain
        }

    def save(self, rpc_url: str) -> Path:
        path = self.home / DEVNET_FILE
        path.write_text(json.dumps(self.describe(rpc_url), indent=2) + "\n")
        self.chain.deployment.save(self.home / "deployment.json")  # for `datasov node run/status --deployment`
        return path

    async def stop(self) -> None:
        for n in self.nodes:
            if n.alive:
                await self.kill(n.index)
        await self.chain.close()
