"""The local network: an embedded chain and N storage nodes, in one process or one process per node.

:class:`ProcessNetwork` (``datasov devnet up``, the CLI tests) runs each node as its own
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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
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
    START_CONCURRENCY,
    NodeProcess,
    bounded,
    first_failure,
    make_node_home,
    node_host,
    node_init,
    node_join,
    start_all,
    stop_all,
)

log = logging.getLogger("datasov.devnet")

DEVNET_FILE = "devnet.json"
OPERATOR_ETH = 10 * ETHER
DEFAULT_CONFIG = ChainConfig()
JOIN_CONCURRENCY = START_CONCURRENCY  # `node join` children at once (devnet up)


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


def _stage(what: str, since: float) -> float:
    now = time.perf_counter()
    log.info("devnet: %s in %.1f s", what, now - since)
    return now


@dataclass
class ProcessNetwork:
    """An embedded chain served over JSON-RPC and N ``datasov node run`` processes (see module doc)."""

    home: Path
    chain: DevChain
    rpc_url: str
    runner: web.AppRunner | None  # the JSON-RPC server of an embedded chain (None: the chain is elsewhere)
    capacity: int = 1 << 30
    nodes: list[NodeProcess] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        home: Path,
        *,
        nodes: int = 12,
        config: ChainConfig = DEFAULT_CONFIG,
        capacity: int = 1 << 30,
        rpc_port: int = 0,
        chain: DevChain | None = None,
        rpc_url: str | None = None,
        join_children: bool = False,
    ) -> ProcessNetwork:
        """``chain`` and ``rpc_url``: a chain already served elsewhere (a Hardhat node); else an
        embedded one, served here on ``rpc_port``. ``join_children``: each node joins by its own
        ``datasov node join`` process (over JSON-RPC); else by the same calls in this process
        (:meth:`join`; 30 children took 204 s of a loaded devnet's start, 2 CPU-s of imports each)."""
        from .rpc import serve

        runner = None
        if chain is None or rpc_url is None:
            chain = await DevChain.embedded(dev_accounts=12, config=config)
            runner, rpc_url = await serve(chain, "127.0.0.1", rpc_port)
        net = cls(home, chain, rpc_url, runner, capacity=capacity)
        await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
        net.chain.deployment.save(net.deployment_file)
        try:
            stage = time.perf_counter()
            procs = [await net.prepare_node(i, child=False) for i in range(nodes)]  # as `node init` makes them
            stage = _stage(f"{nodes} node homes", stage)
            for p in procs:  # the faucet's transactions, one after another (one sender, one nonce)
                await fund_operator(net.chain, p.operator)
            stage = _stage(f"{nodes} operators funded", stage)

            if join_children:

                async def join(p: NodeProcess) -> None:
                    await net.join(p, fund=False)

                if (failure := first_failure(await bounded(procs, join, limit=JOIN_CONCURRENCY))) is not None:
                    raise failure
            else:
                for p in procs:  # one sender at a time on the embedded chain, as LocalNetwork joins
                    await net.join(p, fund=False, child=False)
            stage = _stage(f"{nodes} operators staked and announced", stage)
            await net.start_nodes(procs)
            _stage(f"{nodes} nodes running (node run)", stage)
        except BaseException:
            await net.stop()
            raise
        return net

    async def start_nodes(self, procs: list[NodeProcess]) -> None:
        """``datasov node run`` for each (joined) node: the first, then the rest bootstrapping to it
        (or to the running network's bootstrap peers), :data:`~datasov.procnet.START_CONCURRENCY` at once."""
        if self.bootstrap:

            async def start(p: NodeProcess) -> None:
                await p.start(self.rpc_url, self.deployment_file, bootstrap=self.bootstrap)

            results = await bounded(procs, start)
            self.nodes += [p for p, r in zip(procs, results, strict=True) if not isinstance(r, BaseException)]
            if (failure := first_failure(results)) is not None:
                raise failure
            return
        self.bootstrap = await start_all(procs, self.rpc_url, self.deployment_file)
        self.nodes += procs

    async def join(self, proc: NodeProcess, *, fund: bool = True, child: bool = True) -> dict[str, Any]:
        """What an outside operator does: ``datasov node join`` (``child``: a child process, over
        JSON-RPC; else its calls in this process, on the devnet's chain: funds checked, the minimum
        staked, the home's announcement with its peer id and libp2p address), after the devnet faucet
        (dev account 0) sent the operator ETH and tokens (unless ``fund`` is False); the command's
        JSON result (operator, staked, stake, announced, url, ask)."""
        if fund:
            await fund_operator(self.chain, proc.operator)
        if child:
            return await node_join(proc.home, self.rpc_url, self.deployment_file)
        terms = await asyncio.to_thread(NodeHome.load, proc.home)
        account = await asyncio.to_thread(load_or_create_operator, proc.home)
        chain_id = self.chain.deployment.chain_id
        announcement = announcement_for(proc.home, terms, operator=account.address, chain_id=chain_id)
        result = await join(self.chain, account, announcement)
        return {
            "operator": result.operator,
            "staked": str(result.staked),
            "stake": str(result.stake),
            "announced": result.announced,
            "url": announcement.http_url,
            "ask": str(announcement.ask),
        }

    @property
    def deployment_file(self) -> Path:
        return self.home / "deployment.json"

    async def prepare_node(self, index: int | None = None, *, child: bool = True) -> NodeProcess:
        """Node ``index``'s home (default: the next one): keys and node.json on 127.0.x.1 with free
        HTTP and libp2p ports, as ``datasov node init`` makes them (``child``: by running it, a
        process; else in this one, see :func:`~datasov.procnet.make_node_home`); not joined or
        started: its operator can be funded first."""
        index = len(self.nodes) if index is None else index
        host = node_host(index)
        node_home = self.home / "nodes" / f"node-{index:02d}"
        if child:
            operator = await node_init(node_home, host=host, capacity=self.capacity)
        else:
            operator = await asyncio.to_thread(make_node_home, node_home, host=host, capacity=self.capacity)
        return NodeProcess(index, node_home, host, operator=operator)

    async def add_node(self, proc: NodeProcess | None = None, *, fund: bool = True) -> NodeProcess:
        """One more node, the way an operator adds one: ``node init`` (unless ``proc`` came from
        :meth:`prepare_node`), ``node join`` (funded by the faucet unless ``fund`` is False), then
        ``node run``, bootstrapping to the running network (the first node is the bootstrap peer)."""
        proc = proc or await self.prepare_node()
        await self.join(proc, fund=fund)
        await proc.start(self.rpc_url, self.deployment_file, bootstrap=self.bootstrap)
        self.nodes.append(proc)
        if not self.bootstrap:
            self.bootstrap = list(proc.multiaddrs)
        return proc

    @property
    def directory(self) -> StaticDirectory:
        return StaticDirectory(NodeInfo(n.address, n.url) for n in self.nodes)

    def describe(self) -> dict[str, Any]:
        return {
            "version": 1,
            "rpc": self.rpc_url,
            "deployment": self.chain.deployment.to_json(),
            "nodes": self.directory.to_json(),
            "bootstrap": list(self.bootstrap),
            "pids": {n.address: n.pid for n in self.nodes},
        }

    def save(self) -> Path:
        path = self.home / DEVNET_FILE
        path.write_text(json.dumps(self.describe(), indent=2) + "\n")
        return path

    async def stop(self) -> None:
        """Stop every node process; and the embedded chain with its server (a chain given to
        :meth:`start` is the caller's to close)."""
        await stop_all(self.nodes)
        if self.runner is not None:
            await self.runner.cleanup()
            await self.chain.close()
