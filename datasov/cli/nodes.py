"""``datasov nodes``: the network as a client sees it (renterd's hosts page): every announced,
staked node from the chain, its terms and proof history, whether it answers right now (an HTTP
probe of each, in parallel), and with ``--dht`` when its DHT record last said it was there.

Without ``--dht`` no libp2p is imported or started (the chain's announcements already carry each
node's URL and peer id): the command stays under a second on a 12-node devnet."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from contracts.chain import Chain
from contracts.models import Deployment
from market.directory import NodeInfo
from market.discovery import NodeView

from ..directory import DHTDirectory, open_directory
from .context import command_runner, home_option, json_option, load_network
from .ui import emit_json, out_console, tokens

if TYPE_CHECKING:
    from storage_node.client import NodeClient


async def probe(client: NodeClient, node: NodeInfo, wait: float) -> dict[str, Any]:
    """Does the node answer its health endpoint now, as its own operator?"""
    from storage_node.errors import NodeError

    start = time.perf_counter()
    try:
        health = await asyncio.wait_for(client.health(node.url), wait)
    except (NodeError, TimeoutError) as err:
        return {"reachable": False, "why": str(err) or type(err).__name__}
    if str(health.get("address", "")).lower() != node.address.lower():
        return {"reachable": False, "why": f"answers as {health.get('address')}"}
    return {"reachable": True, "rtt_ms": round((time.perf_counter() - start) * 1000, 1), "free": health.get("free")}


def node_json(node: NodeInfo) -> dict[str, Any]:
    return {
        "operator": node.address,
        "url": node.url,
        "ask": str(node.ask),
        "capacity": node.capacity,
        "region": node.region,
        "peer_id": node.peer_id,
        "stake": str(node.stake),
        "available": node.available,
        "proofs_ok": node.proofs_ok,
        "proofs_missed": node.proofs_missed,
        "last_seen_block": node.last_seen_block,
    }


def dht_json(view: NodeView, now: float) -> dict[str, Any]:
    """What the node's DHT record adds: whether one was found, its free bytes, when it was published."""
    seen = view.seen_at
    return {
        "in_dht": view.in_dht,
        "dht_free": view.free,
        "dht_seen_at": seen,
        "dht_seen_ago_s": None if seen is None else max(0, round(now - seen)),
    }


def free_text(row: dict[str, Any]) -> str:
    """Free space as the node says now (its probe), else as its DHT record said; "-" if neither."""
    free = row.get("free", row.get("dht_free"))
    return "-" if free is None else f"{int(free) / (1 << 30):.1f} GiB"


def last_seen(row: dict[str, Any]) -> str:
    block = f"block {row['last_seen_block']}"
    ago = row.get("dht_seen_ago_s")
    return block if ago is None else f"{block}, DHT {ago} s ago"


@click.command()
@home_option
@click.option("--rpc", default=None, help="JSON-RPC URL (overrides the home's config; needed with --deployment).")
@click.option(
    "--deployment",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Deployment file to use instead of the home's network config.",
)
@click.option(
    "--dht",
    "use_dht",
    is_flag=True,
    help="Also read each node's DHT record (free space, when it was published) through the bootstrap peers.",
)
@click.option(
    "--bootstrap",
    multiple=True,
    help="libp2p bootstrap peer (multiaddr; repeatable; implies --dht; default: the network config's).",
)
@click.option("--no-probe", is_flag=True, help="Do not contact the nodes (chain and DHT data only).")
@click.option(
    "--timeout",
    "wait",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds to wait for the nodes (all asked at once).",
)
@json_option
@command_runner
async def nodes(
    home: Path,
    rpc: str | None,
    deployment: Path | None,
    use_dht: bool,
    bootstrap: tuple[str, ...],
    no_probe: bool,
    wait: float,
    as_json: bool,
) -> None:
    """The storage nodes of the network: operator, URL, ask (tokens per GiB per epoch), capacity,
    stake, proofs made/missed, last seen (block), and whether each answers now.

    "Now" is its /v1/health answering as its own operator (all nodes asked at once, --timeout
    each). Built from the chain's announcements (signature and stake checked); with --dht (or
    --bootstrap) also from the nodes' signed DHT records through the bootstrap peers (the network
    config's or --bootstrap): last seen then adds when each record was published, free its free
    space. A node is "available" when it takes new shares (staked at least the minimum, not leaving).

    \b
    Example:
      datasov nodes --home ./alice
      datasov nodes --home ./alice --dht
      datasov nodes --rpc http://127.0.0.1:8545 --deployment net/deployment.json --json | jq '.nodes[].url'
      datasov nodes --home ./alice --bootstrap /ip4/127.0.1.1/tcp/7501/p2p/12D3KooW...
    """
    if deployment is not None:
        if rpc is None:
            raise click.UsageError("--deployment needs --rpc URL")
        url, deployed = rpc, Deployment.load(deployment)
    else:
        network = load_network(home, rpc)
        url, deployed = network.rpc, network.deployment
        if use_dht and not bootstrap:
            bootstrap = network.bootstrap
    if use_dht and not bootstrap:
        raise click.UsageError("--dht needs bootstrap peers (none in the network config; pass --bootstrap)")
    chain = await Chain.reader(url, deployed)
    try:
        async with open_directory(chain, bootstrap) as directory:
            on_chain = directory.chain if isinstance(directory, DHTDirectory) else directory
            started = time.perf_counter()
            found = await on_chain.nodes()
            chain_seconds = time.perf_counter() - started
            rows = [node_json(n) for n in found]
            dht_seconds = None
            started = time.perf_counter()
            joined = await directory.network() if isinstance(directory, DHTDirectory) else None
            if joined is not None:
                views = {v.address: v for v in await joined.views()}  # the chain's view, just read, is reused
                dht_seconds = time.perf_counter() - started
                clock = time.time()
                for row in rows:
                    view = views.get(row["operator"])
                    row.update(dht_json(view if view is not None else NodeView(NodeInfo(row["operator"], "")), clock))
                    if view is not None and view.in_dht:
                        row["peer_id"] = view.peer_id
        if not no_probe:
            from storage_node.client import NodeClient  # aiohttp: only when the nodes are asked

            async with NodeClient(timeout=wait, retries=1) as client:
                probes = await asyncio.gather(*(probe(client, n, wait) for n in found))
            for row, result in zip(rows, probes, strict=True):
                row.update(result)
    finally:
        await chain.close()
    seconds = {
        "chain_seconds": round(chain_seconds, 3),
        "dht_seconds": None if dht_seconds is None else round(dht_seconds, 3),
    }
    if as_json:
        emit_json({"block": on_chain.block, **seconds, "nodes": rows})
        return
    table = Table(
        "operator", "url", "ask/GiB/epoch", "capacity", "free", "stake", "proofs ok/missed", "last seen", "now"
    )
    for row, node in zip(rows, found, strict=True):
        now = "-" if no_probe else ("up" if row.get("reachable") else f"down ({row.get('why', '')})")
        if not node.available:
            now += " (leaving or under-staked)"
        table.add_row(
            node.address,
            node.url,
            tokens(node.ask),
            f"{node.capacity / (1 << 30):.1f} GiB",
            free_text(row),
            tokens(node.stake),
            f"{node.proofs_ok}/{node.proofs_missed}",
            last_seen(row),
            now,
        )
    out_console.print(table)
    dht = "" if dht_seconds is None else f"; DHT records in {dht_seconds:.2f} s"
    out_console.print(f"{len(found)} node(s) announced, read at block {on_chain.block} in {chain_seconds:.2f} s{dht}")
