"""The devnet of node processes: an embedded chain served over JSON-RPC and N ``datasov node run``
children (``datasov devnet up``, the CLI tests; the module doc of :mod:`datasov.devnet` says how
they join and start; :mod:`datasov.procnet` runs each child)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from contracts.chain import ChainConfig
from contracts.devchain import DevChain
from market.directory import NodeInfo, StaticDirectory
from storage_node.identity import load_or_create_operator
from storage_node.membership import join

from .devnet import DEFAULT_CONFIG, DEVNET_FILE, fund_operator
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
JOIN_CONCURRENCY = START_CONCURRENCY  # `node join` children at once (devnet up)


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
        return (await join(self.chain, account, announcement)).to_json()

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
