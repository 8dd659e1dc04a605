"""``datasov nodes``: the network as a client sees it (renterd's hosts page): every announced,
staked node from the chain, its terms and proof history, and whether it answers right now."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from contracts.chain import Chain
from contracts.models import Deployment
from market.chain_directory import ChainDirectory
from market.directory import NodeInfo
from storage_node.client import NodeClient
from storage_node.errors import NodeError

from .context import command_runner, home_option, json_option, load_network
from .ui import emit_json, out_console, tokens


async def probe(client: NodeClient, node: NodeInfo, wait: float) -> dict[str, Any]:
    """Does the node answer its health endpoint now, as its own operator?"""
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


@click.command()
@home_option
@click.option("--rpc", default=None, help="JSON-RPC URL (overrides the home's config; needed with --deployment).")
@click.option(
    "--deployment",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Deployment file to use instead of the home's network config.",
)
@click.option("--no-probe", is_flag=True, help="Do not contact the nodes (chain data only).")
@click.option("--timeout", "wait", type=float, default=2.0, show_default=True, help="Seconds to wait for each node.")
@json_option
@command_runner
async def nodes(
    home: Path, rpc: str | None, deployment: Path | None, no_probe: bool, wait: float, as_json: bool
) -> None:
    """The storage nodes of the network: operator, URL, ask (tokens per GiB per epoch), capacity,
    stake, proofs made/missed, last seen (block), and whether each answers now.

    Built from the chain's announcements (signature and stake checked); a node is "available" when
    it takes new shares (staked at least the minimum, not leaving).

    \b
    Example:
      datasov nodes --home ./alice
      datasov nodes --rpc http://127.0.0.1:8545 --deployment net/deployment.json --json | jq '.nodes[].url'
    """
    if deployment is not None:
        if rpc is None:
            raise click.UsageError("--deployment needs --rpc URL")
        chain = await Chain.reader(rpc, Deployment.load(deployment))
    else:
        network = load_network(home, rpc)
        chain = await Chain.reader(network.rpc, network.deployment)
    try:
        started = time.perf_counter()
        directory = ChainDirectory(chain)
        found = await directory.nodes()
        chain_seconds = time.perf_counter() - started
        rows = [node_json(n) for n in found]
        if not no_probe:
            async with NodeClient(timeout=wait, retries=1) as client:
                probes = await asyncio.gather(*(probe(client, n, wait) for n in found))
            for row, result in zip(rows, probes, strict=True):
                row.update(result)
    finally:
        await chain.close()
    if as_json:
        emit_json({"block": directory.block, "chain_seconds": round(chain_seconds, 3), "nodes": rows})
        return
    table = Table("operator", "url", "ask/GiB/epoch", "capacity", "stake", "proofs ok/missed", "last seen", "now")
    for row, node in zip(rows, found, strict=True):
        now = "-" if no_probe else ("up" if row.get("reachable") else f"down ({row.get('why', '')})")
        if not node.available:
            now += " (leaving or under-staked)"
        table.add_row(
            node.address,
            node.url,
            tokens(node.ask),
            f"{node.capacity / (1 << 30):.1f} GiB",
            tokens(node.stake),
            f"{node.proofs_ok}/{node.proofs_missed}",
            f"block {node.last_seen_block}",
            now,
        )
    out_console.print(table)
    out_console.print(f"{len(found)} node(s) announced, read at block {directory.block} in {chain_seconds:.2f} s")
