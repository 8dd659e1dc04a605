"""``datasov node``: set up and run a storage node (``init``, ``run``); the operator's commands on
the chain (``join``, ``status``, ``claim``, ``withdraw``, ``leave``) are in :mod:`datasov.cli.operator`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
from dataclasses import replace
from pathlib import Path

import click

from contracts.announcements import SignedAnnouncement
from contracts.chain import Chain
from contracts.errors import ContractsError
from contracts.models import Deployment
from storage_node.api.app import Authorizer, allow_any
from storage_node.authorize import DealAuthorizer
from storage_node.errors import NodeError
from storage_node.identity import load_or_create_operator
from storage_node.membership import ensure_announced, latest_announcement
from storage_node.node import NodeConfig, StorageNode, freeze_startup_objects
from storage_node.p2p.identity import load_or_create_p2p_key
from storage_node.prover import Prover

from ..nodehome import CONFIG_FILE, NodeHome, NodeHomeError, announcement_for, peer_id_of
from .context import TOKENS, check_port_free
from .ui import emit_json, fail

log = logging.getLogger("datasov.node")
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


def load_config(home: Path) -> NodeHome:
    if not (home / CONFIG_FILE).exists():
        fail(f"{home} is not a node home", hint=f"run: datasov node init --home {home}")
    try:
        return NodeHome.load(home)
    except NodeHomeError as err:
        fail(str(err))


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
@click.option(
    "--ask",
    type=TOKENS,
    default="0",
    show_default=True,
    help="Your price in tokens per GiB per epoch; orders paying less are refused (announced on join).",
)
@click.option("--region", default="", help="A region label to announce (e.g. eu-west), at most 32 characters.")
@click.option("--public-url", default=None, help="URL to announce if not http://HOST:PORT (behind NAT or a proxy).")
@click.option(
    "--p2p",
    "p2p_listen",
    default=None,
    metavar="MULTIADDR",
    help="libp2p address `node run` listens on by default, e.g. /ip4/127.0.0.1/tcp/7501 (announced on join).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(
    home: Path,
    listen: str,
    capacity: str,
    ask: int,
    region: str,
    public_url: str | None,
    p2p_listen: str | None,
    as_json: bool,
) -> None:
    """Create a node's identity (operator key and libp2p key, 0600) and configuration, with the
    terms it announces. The first `node join` announces the libp2p peer id (and, with a fixed
    --p2p port, the address): `node run` then has nothing new to announce.

    \b
    Example:
      datasov node init --home ~/.datasov/node1 --http 127.0.0.1:7401 --capacity 500GiB --ask 0.01 --region eu-west
      datasov node init --home ~/.datasov/node2 --http 127.0.0.1:7402 --p2p /ip4/127.0.0.1/tcp/7502
      datasov node join --home ~/.datasov/node1 --rpc http://127.0.0.1:8545 --deployment net/deployment.json
    """
    if (home / CONFIG_FILE).exists():
        fail(f"{home} already holds a node", hint="use another --home, or run it with: datasov node run")
    host, port = parse_listen(listen)
    if p2p_listen is not None and (not p2p_listen.startswith("/") or "/p2p/" in p2p_listen):
        raise click.BadParameter(f"{p2p_listen!r} is not a listen multiaddr (like /ip4/127.0.0.1/tcp/7501)")
    config = NodeHome(host, port, parse_size(capacity), ask=ask, region=region, public_url=public_url, p2p=p2p_listen)
    operator = load_or_create_operator(home)
    try:  # the terms must make a valid announcement
        announcement_for(home, config, operator=operator.address, chain_id=1, peer_id="", multiaddrs=config.p2p_addrs)
    except ContractsError as err:
        raise click.BadParameter(str(err)) from err
    load_or_create_p2p_key(home)
    peer_id = peer_id_of(home)
    config.save(home)
    result = {"home": str(home), "operator": operator.address, "peer_id": peer_id, **config.to_json()}
    if as_json:
        emit_json(result)
    else:
        click.echo(
            f"node created in {home}\n  operator  {operator.address}\n  http      {host}:{port}\n"
            f"  capacity  {capacity}\n  ask       {ask} base units per GiB per epoch\n"
            f"join the network with: datasov node join --home {home} --rpc URL --deployment FILE\n"
            f"then run it with:      datasov node run --home {home} --rpc URL --deployment FILE"
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
    help="Join the libp2p network listening here, e.g. /ip4/127.0.0.1/tcp/7501 (default: node.json's p2p, if any).",
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
    config = load_config(home)
    host, port = parse_listen(listen) if listen else (config.host, config.port)
    check_port_free(host, port)
    size = parse_size(capacity) if capacity else config.capacity
    try:
        p2p_listen = p2p_listen or config.p2p
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
            ask=config.ask,
            region=config.region,
            announce_at_start=rpc is None,  # with a chain: the DHT record carries the on-chain announcement
        )
        asyncio.run(_serve(node_config, rpc, deployment, as_json=as_json, terms=config))
    except (NodeError, ContractsError) as err:
        fail(str(err))


async def _serve(
    config: NodeConfig,
    rpc: str | None = None,
    deployment: Path | None = None,
    *,
    as_json: bool = False,
    terms: NodeHome | None = None,
) -> None:
    chain = None
    authorize: Authorizer = allow_any
    ask = terms.ask if terms is not None else 0
    if rpc is not None and deployment is not None:
        chain = await Chain.connect(rpc, Deployment.load(deployment))
        authorize = DealAuthorizer(chain, load_or_create_operator(config.home).address, ask=ask)
    else:
        log.warning("development mode: accepting any validly signed order, with no on-chain deal behind it")
    storage = StorageNode(config, authorize=authorize, chain=chain)
    await storage.start()
    freeze_startup_objects()  # this process is the node: a full GC walks only what serving allocates
    if chain is not None and terms is not None:
        await _reannounce(chain, storage, terms)
    storage.start_announcing(await _on_chain(chain, storage) if chain is not None else None)
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


async def _on_chain(chain: Chain, storage: StorageNode) -> SignedAnnouncement | None:
    """The node's newest on-chain announcement if it describes this running node (URL and peer id)."""
    try:
        signed = await latest_announcement(chain, storage.address)
    except ContractsError as err:
        log.warning("could not read this node's announcement: %s", err)
        return None
    if signed is None or signed.announcement.http_url != storage.url:
        return None
    if storage.p2p is not None and signed.announcement.peer_id != storage.p2p.peer_id:
        return None
    return signed


async def _reannounce(chain: Chain, storage: StorageNode, terms: NodeHome) -> None:
    """On start: announce again if the URL or terms differ from the newest on-chain announcement
    (a node that has not joined, or is leaving, only says so)."""
    op = await chain.get_operator(storage.address)
    if not op.registered or op.leaving:
        state = "is leaving" if op.leaving else "has not joined"
        log.warning("operator %s %s: not announcing (datasov node join)", storage.address, state)
        return
    p2p = storage.p2p
    announcement = announcement_for(
        storage.config.home,
        replace(terms, capacity=storage.config.capacity),
        operator=storage.address,
        chain_id=chain.deployment.chain_id,
        url=storage.url,
        peer_id=str(p2p.peer_id) if p2p is not None else None,
        multiaddrs=tuple(a.split("/p2p/", 1)[0] for a in p2p.addrs)[:8] if p2p is not None else (),
    )
    try:
        if await ensure_announced(chain, storage.operator, announcement):
            log.info("re-announced: URL or terms changed")
    except ContractsError as err:
        log.warning("could not announce %s: %s", storage.address, err)
