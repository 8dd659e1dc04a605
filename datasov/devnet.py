"""The local network: an embedded chain and N storage nodes in one process, on loopback.

:class:`LocalNetwork` is what ``datasov demo``, ``datasov devnet up`` and the end-to-end tests run:
a fresh in-process EVM with the contracts deployed, N real nodes (real sockets, real files under
``home``), each with its own operator key, funded and staked on-chain, authorising orders against
the chain and running its prover. Nodes can be killed and restarted to inject faults.

``devnet up`` also serves the chain over JSON-RPC on loopback (:mod:`datasov.rpc`) and writes
``devnet.json`` (RPC URL, contract addresses, node directory) for the other commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.chain import ChainConfig
from contracts.connection import DEFAULT_MIN_STAKE, ETHER
from contracts.devchain import DevChain, dev_account
from contracts.loop import Ticking
from market.directory import NodeInfo, StaticDirectory
from storage_node.authorize import DealAuthorizer
from storage_node.identity import load_or_create_operator
from storage_node.node import NodeConfig, StorageNode
from storage_node.prover import Prover

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


@dataclass
class NetworkNode:
    index: int
    home: Path
    node: StorageNode
    prover: Prover | None = None
    task: asyncio.Task[None] | None = None
    alive: bool = False

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
        for i in range(nodes):
            node_home = home / "nodes" / f"node-{i:02d}"
            net.nodes.append(NetworkNode(i, node_home, net._make_node(i, node_home)))
        await net._stake([n.node for n in net.nodes])
        for n in net.nodes:
            await net._run(n, provers=provers)
        return net

    def _make_node(self, index: int, home: Path) -> StorageNode:
        config = NodeConfig(home=home, capacity=self.capacity, port=self._ports.get(index, 0), gc_interval=0)
        address = load_or_create_operator(home).address
        return StorageNode(config, authorize=DealAuthorizer(self.chain, address), chain=self.chain)

    async def _stake(self, nodes: list[StorageNode]) -> None:
        funder = dev_account(0)
        stake = int(await self.chain.call(self.chain.storage_market.functions.minStake())) or DEFAULT_MIN_STAKE
        for node in nodes:
            op = await self.chain.get_operator(node.address)
            if op.registered:
                continue
            await self.chain.send_eth(funder, node.address, OPERATOR_ETH)
            await self.chain.mint(funder, node.address, 10 * stake)
            await self.chain.register_operator(node.operator, stake)

    async def _run(self, n: NetworkNode, *, provers: bool = True) -> None:
        await n.node.start()
        self._ports[n.index] = int(n.node.url.rsplit(":", 1)[1])
        config = {"version": 1, "host": "127.0.0.1", "port": self._ports[n.index], "capacity": self.capacity}
        (n.home / "node.json").write_text(json.dumps(config) + "\n")  # so `datasov node status` reads it
        n.alive = True
        if provers:
            assert n.node.store is not None
            metrics = n.node.state.metrics if n.node.state is not None else None
            n.prover = Prover(self.chain, n.node.operator, n.node.store, poll=self.prover_poll, metrics=metrics)
            if self.background:
                n.task = asyncio.create_task(n.prover.run(), name=f"prover-{n.index}")

    @property
    def directory(self) -> StaticDirectory:
        """Every node, dead or alive (a directory lists nodes; whether they answer is another matter)."""
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
        n.node = self._make_node(index, n.home)
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
            "nodes": self.directory.to_json(),
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
