"""Placement: which nodes get the n shares of a dataset.

A node qualifies when it is a staked operator taking new shares (stake at least the minimum, not
leaving), its ask is within the publisher's ``max_ask`` (token base units per GiB per epoch), it
answers its health endpoint now *as that operator* (a node lying about its URL answers as another
address, or not at all), and it has the share's size free. From those, n are drawn without
replacement, weighted by proof history (``weight``), so that no two share an operator or a network
(/24 for IPv4, /48 for IPv6; a host name counts as its own network). The draw is deterministic
with ``seed`` (tests), random otherwise.

When fewer than n can be chosen, :class:`NotEnoughNodes` says how many qualified and why each other
node did not, before anything is uploaded or put on-chain.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from contracts.chain import Chain
from storage_node.client import NodeClient
from storage_node.errors import NodeError

from .directory import Directory, NodeInfo, moved
from .errors import MarketError

GIB = 1 << 30


class PublishError(MarketError):
    """Publishing could not complete (not enough nodes, every candidate failed...)."""


class NotEnoughNodes(PublishError):
    """Fewer nodes can be chosen than shares to place; ``rejected`` says why each other was not."""

    def __init__(
        self, message: str, *, needed: int = 0, qualified: int = 0, rejected: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.needed = needed
        self.qualified = qualified
        self.rejected = rejected or {}


@dataclass(frozen=True, slots=True)
class PlacementPolicy:
    max_ask: int | None = None  # token base units per GiB per epoch; None: any ask
    distinct_networks: bool = True  # one share per /24 (IPv4) or /48 (IPv6)
    seed: int | None = None  # deterministic draw (tests); None: random
    probe_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class Candidate:
    node: NodeInfo
    free: int
    rtt: float

    @property
    def network(self) -> str:
        return network_of(self.node.url)


@dataclass
class Qualified:
    candidates: list[Candidate] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # operator address -> why not


def network_of(url: str) -> str:
    """The network a node's URL is on: ``a.b.c.0/24``, ``x:y:z::/48``, or the host name itself."""
    rest = url.split("://", 1)[-1]
    host = rest[1:].split("]", 1)[0] if rest.startswith("[") else rest.split("/", 1)[0].rsplit(":", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host.lower()
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def weight(node: NodeInfo) -> float:
    """Proof history as a weight in (0, 1]: new nodes 1, each missed proof counts as ten proofs lost."""
    return (1 + node.proofs_ok) / (1 + node.proofs_ok + 10 * node.proofs_missed)


def fee_for(ask: int, share_size: int) -> int:
    """Fee per share per epoch a node with ``ask`` requires for a share of ``share_size`` bytes."""
    return -(-ask * share_size // GIB)


async def qualify(
    nodes: Iterable[NodeInfo], client: NodeClient, chain: Chain, *, need_free: int, policy: PlacementPolicy
) -> Qualified:
    """Probe every node; return those that qualify (fastest first) and why the others do not."""
    minimum = await chain.min_stake()
    out = Qualified()
    seen: set[str] = set()
    unique = []
    for node in nodes:
        if node.address.lower() in seen:
            out.rejected.setdefault(node.address, "a second node of the same operator")
            continue
        seen.add(node.address.lower())
        unique.append(node)

    async def check(node: NodeInfo) -> Candidate | str:
        if policy.max_ask is not None and node.ask > policy.max_ask:
            return f"ask {node.ask} per GiB per epoch is above the maximum fee {policy.max_ask}"
        op = await chain.get_operator(node.address)
        if op.leaving:
            return "leaving the network"
        if not op.registered or op.stake < minimum:
            return f"stake {op.stake} is below the minimum {minimum}"
        start = time.perf_counter()
        try:
            health = await asyncio.wait_for(client.health(node.url), policy.probe_timeout)
        except (NodeError, TimeoutError) as err:
            return f"unreachable at {node.url}: {err or type(err).__name__}"
        rtt = time.perf_counter() - start
        if str(health.get("address", "")).lower() != node.address.lower():
            return f"{node.url} answers as {health.get('address')!s}, not as this operator"
        free = int(health.get("free", 0))
        if free < need_free:
            return f"{free} bytes free, the share needs {need_free}"
        return Candidate(node, free, rtt)

    for node, result in zip(unique, await asyncio.gather(*(check(n) for n in unique)), strict=True):
        if isinstance(result, Candidate):
            out.candidates.append(result)
        else:
            out.rejected[node.address] = result
    out.candidates.sort(key=lambda c: c.rtt)
    return out


async def look_again(
    found: Qualified,
    nodes: Iterable[NodeInfo],
    directory: Directory,
    client: NodeClient,
    chain: Chain,
    *,
    need_free: int,
    policy: PlacementPolicy,
) -> None:
    """Nodes ``found`` rejected as unreachable are probed again where ``directory`` finds them now
    (:func:`market.directory.moved`: the chain re-read, the DHT asked); ``found`` is updated."""
    known = {n.address: n for n in nodes}
    lost = [known[a] for a, why in found.rejected.items() if why.startswith("unreachable at ") and a in known]
    urls = await asyncio.gather(*(moved(directory, n.address, n.url) for n in lost))
    again = [replace(n, url=url) for n, url in zip(lost, urls, strict=True) if url is not None]
    if not again:
        return
    more = await qualify(again, client, chain, need_free=need_free, policy=policy)
    found.rejected.update(more.rejected)
    for c in more.candidates:
        found.rejected.pop(c.node.address, None)
    found.candidates = sorted([*found.candidates, *more.candidates], key=lambda c: c.rtt)


def draw(
    candidates: Sequence[Candidate],
    n: int,
    *,
    policy: PlacementPolicy,
    taken_operators: Iterable[str] = (),
    taken_networks: Iterable[str] = (),
) -> tuple[list[Candidate], dict[str, str]]:
    """Up to ``n`` candidates on distinct operators and networks, weighted by proof history; and
    why each candidate left out was (its network already holds a share)."""
    rng = random.Random(policy.seed)  # placement spreads load; it protects no secret
    operators = {a.lower() for a in taken_operators}
    networks = set(taken_networks)
    pool = list(candidates)
    chosen: list[Candidate] = []
    skipped: dict[str, str] = {}
    while pool and len(chosen) < n:
        pool = [c for c in pool if c.node.address.lower() not in operators]
        if policy.distinct_networks:
            for c in pool:
                if c.network in networks:
                    skipped[c.node.address] = f"its network {c.network} already holds a share"
            pool = [c for c in pool if c.network not in networks]
        if not pool:
            break
        pick = rng.choices(pool, weights=[weight(c.node) for c in pool])[0]
        pool.remove(pick)
        chosen.append(pick)
        operators.add(pick.node.address.lower())
        networks.add(pick.network)
    return chosen, skipped


async def choose_nodes(
    directory: Directory,
    client: NodeClient,
    chain: Chain,
    n: int,
    *,
    need_free: int,
    policy: PlacementPolicy = PlacementPolicy(),
    spares: int = 0,
    exclude: Iterable[str] = (),
    taken_networks: Iterable[str] = (),
) -> tuple[list[NodeInfo], list[NodeInfo]]:
    """``n`` nodes for the shares, and up to ``spares`` more on yet other networks (for uploads that
    fail); raises :class:`NotEnoughNodes` if fewer than ``n`` can be chosen. ``exclude``: operators
    that already hold a share (repair)."""
    excluded = {a.lower() for a in exclude}
    nodes = [node for node in await directory.nodes() if node.address.lower() not in excluded]
    found = await qualify(nodes, client, chain, need_free=need_free, policy=policy)
    await look_again(found, nodes, directory, client, chain, need_free=need_free, policy=policy)
    chosen, skipped = draw(found.candidates, n + spares, policy=policy, taken_networks=taken_networks)
    if len(chosen) < n:
        why = {**found.rejected, **skipped}
        detail = "; ".join(f"{address}: {reason}" for address, reason in sorted(why.items()))
        raise NotEnoughNodes(
            f"{len(found.candidates)} of {len(nodes)} nodes qualify ({len(chosen)} on distinct operators and networks);"
            f" {n} needed. {detail or 'no node is announced'}",
            needed=n,
            qualified=len(chosen),
            rejected=why,
        )
    return [c.node for c in chosen[:n]], [c.node for c in chosen[n:]]
