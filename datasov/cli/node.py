"""``datasov node``: set up and run a storage node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
from pathlib import Path
from typing import Any

import click

from contracts.chain import Chain
from contracts.errors import ContractsError
from contracts.models import Deployment
from storage_node.api.app import Authorizer, allow_any
from storage_node.authorize import DealAuthorizer
from storage_node.errors import NodeError
from storage_node.identity import load_or_create_operator
from storage_node.node import NodeConfig, StorageNode
from storage_node.prover import Prover
from storage_node.store.shares import ShareStore

from .context import check_port_free
from .ui import emit_json, fail

log = logging.getLogger("datasov.node")
CONFIG_FILE = "node.json"
_UNITS = {
    "": 1,
    "b": 1,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
}


def parse_size(text: str) -> int:
    """'50GiB' -> 53687091200; plain numbers are bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise click.BadParameter(f"{text!r} is not a size like 500MiB, 50GiB or 2TB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise click.BadParameter(f"{text!r} is not HOST:PORT")
    return host, int(port)


def _load_config(home: Path) -> dict[str, Any]:
    path = home / CONFIG_FILE
    if not path.exists():
        fail(f"{home} is not a node home", hint=f"run: datasov node init --home {home}")
    config: dict[str, Any] = json.loads(path.read_text())
    return config


@click.group()
def node() -> None:
    """Run a storage node: store encrypted shares, serve them, prove you hold them."""


@node.command()
@click.option("--home", type=click.Path(path_type=Path), required=True, help="Directory for keys, config and shares.")
@click.option(
    "--http",
    "listen",
    default="127.0.0.1:0",
    show_default=True,
    help="HOST:PORT to serve the HTTP API on (port 0: any free port).",
)
@click.option("--capacity", default="50GiB", show_default=True, help="Disk space offered for shares.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(home: Path, listen: str, capacity: str, as_json: bool) -> None:
    """Create a node's identity (operator key, 0600) and configuration.

    \b
    Example:
      datasov node init --home ~/.datasov/node1 --http 127.0.0.1:7401 --capacity 500GiB
    """
    if (home / CONFIG_FILE).exists():
        fail(f"{home} already holds a node", hint="use another --home, or run it with: datasov node run")
    host, port = parse_listen(listen)
    size = parse_size(capacity)
    operator = load_or_create_operator(home)
    config = {"version": 1, "host": host, "port": port, "capacity": size}
    (home / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    result = {"home": str(home), "operator": operator.address, **config}
    if as_json:
        emit_json(result)
    else:
        click.echo(
            f"node created in {home}\n  operator  {operator.address}\n  http      {host}:{port}\n"
            f"  capacity  {capacity}\nstart it with: datasov node run --home {home}"
        )


@node.command()
@click.option(
    "--home",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="The node's directory (from `datasov node init`).",
)
@click.option("--http", "listen", default=None, help="Override HOST:PORT from the config.")
@click.option("--capacity", default=None, help="Override the capacity from the config (e.g. 50GiB).")
@click.option(
    "--p2p",
    "p2p_listen",
    default=None,
    metavar="MULTIADDR",
    help="Join the libp2p network listening here, e.g. /ip4/127.0.0.1/tcp/7501 (default: no libp2p).",
)
@click.option(
    "--bootstrap",
    multiple=True,
    metavar="MULTIADDR",
    help="A peer to join through (full multiaddr ending in /p2p/<peer id>); repeatable.",
)
@click.option(
    "--rpc",
    default=None,
    metavar="URL",
    help="EVM JSON-RPC endpoint: accept only orders backed by an on-chain deal (needs --deployment).",
)
@click.option(
    "--deployment",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Deployment file (contract addresses) for --rpc.",
)
@click.option(
    "--dev-accept-any-order",
    is_flag=True,
    help="Development only: without --rpc, accept any validly signed order (no on-chain deal behind it).",
)
@click.option(
    "--summary-every",
    "summary_interval",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="Log a summary of what the node did (shares, bytes, requests, proofs) this often; 0: never.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request at debug level.")
@click.option("--json", "as_json", is_flag=True, help="Print where the node listens as one JSON line.")
def run(
    home: Path,
    listen: str | None,
    capacity: str | None,
    p2p_listen: str | None,
    bootstrap: tuple[str, ...],
    rpc: str | None,
    deployment: Path | None,
    dev_accept_any_order: bool,
    summary_interval: float,
    verbose: bool,
    as_json: bool,
) -> None:
    """Run the node until SIGINT or SIGTERM; prints where it listens.

    Orders are accepted only when an on-chain deal backs them (--rpc and --deployment); a node
    with no chain must be told so with --dev-accept-any-order, for local development only.

    \b
    Example:
      datasov node run --home ~/.datasov/node1 --rpc http://127.0.0.1:8545 --deployment net/deployment.json
      datasov node run --home ~/.datasov/node2 --dev-accept-any-order --p2p /ip4/127.0.0.1/tcp/7501
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    libp2p_log = logging.getLogger("libp2p")  # py-libp2p's warnings in the node's log, formatted like ours
    libp2p_log.propagate = True
    libp2p_log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("libp2p.network.auto_connector").setLevel(logging.NOTSET)  # it sets INFO on itself
    if rpc is None and not dev_accept_any_order:
        raise click.UsageError(
            "without --rpc the node cannot check orders against on-chain deals: pass --rpc URL --deployment FILE, "
            "or --dev-accept-any-order for local development"
        )
    if rpc is not None and dev_accept_any_order:
        raise click.UsageError("--dev-accept-any-order makes no sense with --rpc (orders are checked on-chain)")
    config = _load_config(home)
    host, port = parse_listen(listen) if listen else (config["host"], config["port"])
    check_port_free(host, port)
    size = parse_size(capacity) if capacity else int(config["capacity"])
    try:
        if bootstrap and p2p_listen is None:
            p2p_listen = "/ip4/127.0.0.1/tcp/0"
        if rpc is not None and deployment is None:
            fail("--rpc needs --deployment FILE (the contract addresses)")
        chain_id = Deployment.load(deployment).chain_id if deployment is not None else 0
        node_config = NodeConfig(
            home=home,
            host=host,
            port=port,
            capacity=size,
            p2p_listen=p2p_listen,
            bootstrap=bootstrap,
            chain_id=chain_id,
            summary_interval=summary_interval,
        )
        asyncio.run(_serve(node_config, rpc, deployment, as_json=as_json))
    except (NodeError, ContractsError) as err:
        fail(str(err))


async def _serve(
    config: NodeConfig, rpc: str | None = None, deployment: Path | None = None, *, as_json: bool = False
) -> None:
    chain = None
    authorize: Authorizer = allow_any
    if rpc is not None and deployment is not None:
        chain = await Chain.connect(rpc, Deployment.load(deployment))
        authorize = DealAuthorizer(chain, load_or_create_operator(config.home).address)
    else:
        log.warning("development mode: accepting any validly signed order, with no on-chain deal behind it")
    storage = StorageNode(config, authorize=authorize, chain=chain)
    await storage.start()
    prover_task = None
    prover = None
    if chain is not None and storage.store is not None and storage.state is not None:
        prover = Prover(chain, storage.operator, storage.store, metrics=storage.state.metrics)
        prover_task = asyncio.create_task(prover.run(), name="prover")
    if as_json:
        peer = storage.p2p.peer_id if storage.p2p is not None else None
        addrs = storage.p2p.full_addrs if storage.p2p is not None else []
        line = {"address": storage.address, "url": storage.url, "peer_id": str(peer) if peer else None}
        click.echo(json.dumps({**line, "multiaddrs": addrs}))
    else:
        click.echo(f"datasov node {storage.address} listening on {storage.url}", nl=True)
    if storage.p2p is not None and not as_json:
        click.echo(f"libp2p peer {storage.p2p.peer_id} at {' '.join(storage.p2p.full_addrs)}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if prover_task is not None and prover is not None:
            prover.stop()
            prover_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prover_task
        await storage.stop()
        if chain is not None:
            await chain.close()
        click.echo("datasov node stopped")


@node.command()
@click.option("--home", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--rpc", default=None, metavar="URL", help="Also show stake, earnings and slashes from this chain.")
@click.option(
    "--deployment",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Deployment file (contract addresses) for --rpc.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def status(home: Path, rpc: str | None, deployment: Path | None, as_json: bool) -> None:
    """What this node stores (works while the node is stopped); with --rpc, what it earned and lost.

    \b
    Example:
      datasov node status --home ~/.datasov/node1 --json
      datasov node status --home ~/.datasov/node1 --rpc http://127.0.0.1:8545 --deployment deploy.json
    """
    config = _load_config(home)
    store = ShareStore(home, capacity=int(config["capacity"]))
    try:
        records = store.index.all()
        result: dict[str, Any] = {
            "operator": load_or_create_operator(home).address,
            "shares": sum(r.state == "ok" for r in records),
            "quarantined": sum(r.state == "quarantined" for r in records),
            "used": store.index.used_bytes(),
            "capacity": store.capacity,
        }
    finally:
        store.close()
    if rpc is not None:
        if deployment is None:
            fail("--rpc needs --deployment FILE (the contract addresses)")
        try:
            result["chain"] = asyncio.run(_earnings(rpc, Deployment.load(deployment), result["operator"], records))
        except ContractsError as err:
            fail(str(err))
    if as_json:
        emit_json(result)
    else:
        for key, value in result.items():
            if isinstance(value, dict):
                for k, v in value.items():
                    click.echo(f"{k:12} {v}")
            else:
                click.echo(f"{key:12} {value}")


async def _earnings(rpc: str, deployment: Deployment, operator: str, records: list[Any]) -> dict[str, Any]:
    """Stake, withdrawable balance, fees proven but not yet claimed, and slashes, from the chain."""
    chain = await Chain.connect(rpc, deployment)
    try:
        op = await chain.get_operator(operator)
        unclaimed = 0
        for r in records:
            if r.deal_id and r.state == "ok":
                share = await chain.get_share(r.deal_id, r.idx)
                if share.provider.lower() == operator.lower():
                    unclaimed += share.unclaimed * (await chain.get_deal(r.deal_id)).fee_per_share_epoch
        slashes = await chain.storage_market.events.ProofMissed().get_logs(
            from_block=deployment.deployed_block, argument_filters={"provider": operator}
        )
        return {
            "registered": op.registered,
            "stake": str(op.stake),
            "active_shares": op.active_shares,
            "withdrawable": str(await chain.storage_balance(operator)),
            "unclaimed_fees": str(unclaimed),
            "slashed": str(sum(int(e["args"]["slashed"]) for e in slashes)),
            "missed_proofs": len(slashes),
        }
    finally:
        await chain.close()
