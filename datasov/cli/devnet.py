"""``datasov devnet up`` and ``datasov demo``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from contracts.chain import ChainConfig
from contracts.devchain import DevChain, dev_account

from .context import DEV_ACCOUNTS, check_port_free, json_option
from .ui import emit_json, err_console, fail, json_errors, out_console


def _capacity(_ctx: click.Context, _param: click.Parameter, text: str) -> int:
    """--capacity in bytes, from `datasov node`'s sizes (500MiB, 8GiB, 2TB)."""
    from .node import parse_size

    size = parse_size(text)
    if size <= 0:
        raise click.BadParameter(f"{text!r}: a node must offer some space")
    return size


@click.group()
def devnet() -> None:
    """A long-running local network: embedded chain over JSON-RPC plus storage nodes."""


@devnet.command("up")
@click.option("--home", type=click.Path(path_type=Path, file_okay=False), required=True, help="Network directory.")
@click.option("--nodes", type=click.IntRange(1, 64), default=12, show_default=True)
@click.option("--rpc-port", type=int, default=8545, show_default=True, help="Loopback port for JSON-RPC (0: any).")
@click.option(
    "--block-time",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds per block: one block per slot, mined at the slot's first transaction (or empty at its end); "
    "later transactions of the slot share the next block, as on a real chain.",
)
@click.option("--epoch-blocks", type=click.IntRange(2, 256), default=30, show_default=True)
@click.option(
    "--capacity",
    default="1GiB",
    show_default=True,
    callback=_capacity,
    help="Disk space each node offers for shares (e.g. 8GiB; a share of a 4 GiB file at 3-of-10 is 1.37 GiB).",
)
@click.option("--fresh", is_flag=True, help="Start over on a home whose devnet stopped (its chain is gone).")
@click.option("--no-guardians", is_flag=True, help="Do not run the nodes as key guardians (see docs/guardians.md).")
@click.option(
    "--in-process",
    is_flag=True,
    help="Run the nodes inside this process, without libp2p (faster to start; a killed node is not a real process).",
)
@json_option
def devnet_up(
    home: Path,
    nodes: int,
    rpc_port: int,
    block_time: float,
    epoch_blocks: int,
    capacity: int,
    fresh: bool,
    no_guardians: bool,
    in_process: bool,
    as_json: bool,
) -> None:
    """Start a chain and N nodes on loopback and keep them running until Ctrl-C.

    Each node is its own `datasov node run` process on its own address (127.0.1.1, 127.0.2.1, ...),
    with libp2p on and bootstrapped to the first node; they are stopped (SIGTERM, then SIGKILL)
    when the devnet stops, and die with it if it is killed. Node logs: HOME/nodes/node-NN/node.log.
    Writes HOME/devnet.json (RPC URL, contracts, node directory, bootstrap peers, node pids) for
    `datasov init --network`.
    The chain lives in memory: a stopped devnet cannot be resumed, so `devnet up` on its home
    refuses unless --fresh (homes made against the old one then need `datasov init --force`).

    \b
    Example:
      datasov devnet up --home ./net --nodes 12 &
      datasov devnet up --home ./big --nodes 30 --capacity 8GiB --fresh &
      datasov init --home ./alice --network ./net/devnet.json --dev-account 1 --no-passphrase
      datasov publish ./my-corpus --home ./alice --price 5
    """
    json_errors(as_json)
    _claim_home(home, fresh=fresh)
    check_port_free("127.0.0.1", rpc_port)
    home.mkdir(parents=True, exist_ok=True)
    pid_file = home / PID_FILE
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        run = _devnet if in_process else _process_devnet
        asyncio.run(run(_Up(home, nodes, rpc_port, block_time, epoch_blocks, as_json, capacity, not no_guardians)))
    finally:
        pid_file.unlink(missing_ok=True)


PID_FILE = "devnet.pid"


@dataclass(frozen=True, slots=True)
class _Up:
    """What ``devnet up`` was asked for, for either kind of devnet."""

    home: Path
    nodes: int
    rpc_port: int
    block_time: float
    epoch_blocks: int
    as_json: bool
    capacity: int  # bytes each node offers
    guardians: bool


def _running(pid_file: Path) -> int | None:
    """The pid of the devnet process that holds this home, if it still runs."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _claim_home(home: Path, *, fresh: bool) -> None:
    """Refuse a home another devnet runs on, or whose stopped devnet would be silently replaced."""
    if (pid := _running(home / PID_FILE)) is not None:
        fail(f"a devnet is already running on {home} (pid {pid})", hint="use it, or stop it first")
    if not (home / "devnet.json").exists():
        return
    if not fresh:
        fail(
            f"{home} holds a devnet that stopped; its chain was in memory and cannot be resumed",
            hint="add --fresh to start over there (then `datasov init --force --network ...` in each home), "
            "or use a new --home",
        )
    for name in ("devnet.json", "deployment.json"):
        (home / name).unlink(missing_ok=True)
    shutil.rmtree(home / "nodes", ignore_errors=True)


async def _devnet(up: _Up) -> None:
    from ..devnet import LocalNetwork
    from ..devnet_guardians import DevnetGuardians
    from ..rpc import serve

    config = ChainConfig(epoch_blocks=up.epoch_blocks)
    net = await LocalNetwork.start(up.home, nodes=up.nodes, config=config, capacity=up.capacity, prover_poll=1.0)
    guards = (
        await DevnetGuardians.start(net.chain, [(n.home, n.node.operator) for n in net.nodes]) if up.guardians else None
    )
    runner, url = await serve(net.chain, "127.0.0.1", up.rpc_port)
    path = net.save(url)
    rows = [(str(n.index), n.node.address, n.node.url) for n in net.nodes]
    _say_up(net.describe(url), path, rows, chain_id=net.chain.deployment.chain_id, as_json=up.as_json)
    try:
        await _run_until_stopped(net.chain, up.block_time)
    finally:
        await runner.cleanup()
        if guards is not None:
            await guards.stop()
        await net.stop()
        err_console.print("devnet stopped")


async def _process_devnet(up: _Up) -> None:
    from storage_node.identity import load_or_create_operator

    from ..devnet_guardians import DevnetGuardians
    from ..devnet_processes import ProcessNetwork
    from ..procnet import NodeProcessError

    _log_progress()
    try:
        net = await ProcessNetwork.start(
            up.home,
            nodes=up.nodes,
            config=ChainConfig(epoch_blocks=up.epoch_blocks),
            capacity=up.capacity,
            rpc_port=up.rpc_port,
        )
    except NodeProcessError as err:
        fail(str(err), hint=f"see the node logs under {up.home / 'nodes'}")
    # the guardians run in the devnet process, with each node's operator key (docs/guardians.md)
    guards = (
        await DevnetGuardians.start(net.chain, [(n.home, load_or_create_operator(n.home)) for n in net.nodes])
        if up.guardians
        else None
    )
    path = net.save()
    rows = [(str(n.index), n.address, n.url, str(n.pid)) for n in net.nodes]
    _say_up(net.describe(), path, rows, chain_id=net.chain.deployment.chain_id, as_json=up.as_json)
    try:
        await _run_until_stopped(net.chain, up.block_time)
    finally:
        if guards is not None:
            await guards.stop()
        await net.stop()
        err_console.print("devnet stopped")


def _log_progress() -> None:
    """The start's progress on stderr (each stage's and each node's seconds: a slow start says where)."""
    import logging

    progress = logging.getLogger("datasov.devnet")
    if not progress.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)


def _say_up(
    described: dict[str, Any], path: Path, rows: Sequence[tuple[str, ...]], *, chain_id: int, as_json: bool
) -> None:
    if as_json:
        emit_json({**described, "file": str(path), "dev_accounts": {str(i): [a, k] for i, a, k in dev_accounts()}})
        return
    out_console.print(f"chain JSON-RPC  {described['rpc']}  (chain id {chain_id})")
    table = Table("node", "operator", "url", *(["pid"] if rows and len(rows[0]) > 3 else []))
    for row in rows:
        table.add_row(*row)
    out_console.print(table)
    out_console.print("dev accounts (funded; local use only; `datasov init --dev-account N`):")
    for i, address, key in dev_accounts():
        out_console.print(f"  {i:2d}  {address}  {key}")
    out_console.print(f"network file    {path}\n[dim]Ctrl-C to stop[/]")


async def _run_until_stopped(chain: DevChain, block_time: float) -> None:
    """One block per ``block_time`` slot (contracts.slots) until SIGINT or SIGTERM."""
    from contracts.slots import SlotMiner

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ticker = asyncio.create_task(SlotMiner(chain, block_time).run())
    try:
        await stop.wait()
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker


def dev_accounts() -> list[tuple[int, str, str]]:
    """(N, address, key) of the dev accounts `datasov init --dev-account N` takes."""
    return [(i, dev_account(i).address, "0x" + bytes(dev_account(i).key).hex()) for i in range(1, DEV_ACCOUNTS + 1)]


@click.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep the network's files here (default: a temporary directory, removed after).",
)
@click.option("--nodes", type=click.IntRange(12, 64), default=12, show_default=True)
@json_option
def demo(workdir: Path | None, nodes: int, as_json: bool) -> None:
    """Run the whole story on this machine: publish, license, fetch, lose nodes, get paid, revoke, audit.

    Starts an in-process chain and 12 storage nodes on loopback (nothing to install), then an owner
    publishes the bundled sample, a lab buys a training license and fetches it, two nodes die and
    the data is still there, an epoch passes and the nodes are paid for their proofs (the dead ones
    slashed), the owner revokes consent, and the lab's consent receipt is verified.
    Exits 0 only if every step succeeded.

    \b
    Example:
      datasov demo
      datasov demo --json | jq .ok
    """
    import logging

    from ..demo import run_demo

    logging.getLogger("datasov").setLevel(logging.ERROR)  # the demo tells its own story

    def say(text: str) -> None:
        if not as_json:
            out_console.print(text, highlight=False)

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run_demo(workdir, say, nodes=nodes))
    else:
        with tempfile.TemporaryDirectory(prefix="datasov-demo-") as tmp:
            result = asyncio.run(run_demo(Path(tmp), say, nodes=nodes))
    if as_json:
        emit_json(result.summary())
    else:
        table = Table("step", "result", "seconds", title="datasov demo")
        for s in result.steps:
            table.add_row(s.name, "[green]ok[/]" if s.ok else "[red]FAILED[/]", f"{s.seconds:.1f}")
        out_console.print(table)
        total = sum(s.seconds for s in result.steps)
        verdict = "[green]all steps passed[/]" if result.ok else "[red]some steps failed[/]"
        out_console.print(f"{verdict} in {total:.1f} s")
    raise SystemExit(0 if result.ok else 1)
