"""``datasov ui``: serve the local web app for this home (see :mod:`datasov.web`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from contracts.chain import Chain
from market.keystore import KeystoreError
from storage_node.identity import load_or_create_operator

from ..nodehome import CONFIG_FILE as NODE_CONFIG
from .context import check_port_free, home_option, load_network, open_keystore, passphrase_option
from .node import parse_listen
from .ui import err_console, fail, json_errors

if TYPE_CHECKING:  # datasov.web imports datasov.cli's helpers: load it when the command runs
    from datasov.web.state import NodeSide


def _node_side(node_home: Path) -> NodeSide:
    from datasov.web.state import NodeSide

    config_path = node_home / NODE_CONFIG
    if not config_path.exists():
        fail(f"{node_home} is not a node home (no {NODE_CONFIG})", hint=f"run: datasov node init --home {node_home}")
    config = json.loads(config_path.read_text())
    port = int(config.get("port", 0))
    url = f"http://{config.get('host', '127.0.0.1')}:{port}" if port else None
    return NodeSide(node_home, load_or_create_operator(node_home), url)


@click.command("ui")
@home_option
@click.option(
    "--listen",
    default="127.0.0.1:8470",
    show_default=True,
    help="HOST:PORT to serve on (port 0: any free port). Anything but loopback is warned about.",
)
@click.option(
    "--node-home",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Your storage node's directory (from `datasov node init`), for the Node page.",
)
@passphrase_option
@click.option("--json", "as_json", is_flag=True, help='Print {"url", "address"} as one JSON line once serving.')
def ui(home: Path, listen: str, node_home: Path | None, passphrase_file: Path | None, as_json: bool) -> None:
    """Open the web app: market, your licenses and datasets, your node, the network.

    Prints a one-time login URL (open it in a browser on this machine); the keystore stays in this
    process and pages never see a private key. Stops on Ctrl-C.

    \b
    Example:
      datasov ui --home ./alice                       then open the printed http://127.0.0.1:8470/?token=...
      datasov ui --home ./op --node-home ./op/node1 --listen 127.0.0.1:0
    """
    from datasov.web.server import is_loopback, start
    from datasov.web.state import WebState

    json_errors(as_json)
    try:
        host, port = parse_listen(listen)
    except click.BadParameter as err:
        raise click.UsageError(str(err)) from err
    if not is_loopback(host):
        err_console.print(
            f"[yellow]warning:[/] listening on {host}: other machines can reach this app (it holds your keystore); "
            "anyone with the login URL can act as you"
        )
    check_port_free(host, port)
    network = load_network(home)
    try:
        keystore = open_keystore(home, passphrase_file)
    except KeystoreError as err:
        fail(str(err), name=type(err).__name__)
    node = _node_side(node_home) if node_home is not None else None

    async def connect() -> Chain:
        return await Chain.connect(network.rpc, network.deployment)

    state = WebState(home, keystore, network.directory, connect, rpc=network.rpc, node=node)

    async def serve() -> None:
        runner, url = await start(state, host, port)
        if as_json:
            click.echo(json.dumps({"url": url, "address": keystore.account.address}), nl=True)
        else:
            click.echo(f"datasov ui for {keystore.account.address}: open this link once (it logs you in)\n  {url}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            if not as_json:
                click.echo("datasov ui stopped")

    asyncio.run(serve())
