"""``datasov devnet up`` and ``datasov demo``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from pathlib import Path

import click
from rich.table import Table

from contracts.chain import ChainConfig
from contracts.devchain import dev_account

from .context import json_option
from .ui import emit_json, err_console, out_console


@click.group()
def devnet() -> None:
    """A long-running local network: embedded chain over JSON-RPC plus storage nodes."""


@devnet.command("up")
@click.option("--home", type=click.Path(path_type=Path, file_okay=False), required=True, help="Network directory.")
@click.option("--nodes", type=click.IntRange(1, 64), default=12, show_default=True)
@click.option("--rpc-port", type=int, default=8545, show_default=True, help="Loopback port for JSON-RPC (0: any).")
@click.option("--block-time", type=float, default=1.0, show_default=True, help="Seconds between empty blocks.")
@click.option("--epoch-blocks", type=click.IntRange(2, 256), default=30, show_default=True)
@json_option
def devnet_up(home: Path, nodes: int, rpc_port: int, block_time: float, epoch_blocks: int, as_json: bool) -> None:
    """Start a chain and N nodes on loopback and keep them running until Ctrl-C.

    Writes HOME/devnet.json (RPC URL, contracts, node directory) for `datasov init --network`.

    \b
    Example:
      datasov devnet up --home ./net --nodes 12 &
      datasov init --home ./alice --network ./net/devnet.json --dev-account 1 --no-passphrase
      datasov publish ./corpus --home ./alice --price 5
    """
    home.mkdir(parents=True, exist_ok=True)
    asyncio.run(_devnet(home, nodes, rpc_port, block_time, epoch_blocks, as_json))


async def _devnet(home: Path, nodes: int, rpc_port: int, block_time: float, epoch_blocks: int, as_json: bool) -> None:
    from .devnet import LocalNetwork
    from .rpc import serve

    net = await LocalNetwork.start(home, nodes=nodes, config=ChainConfig(epoch_blocks=epoch_blocks), prover_poll=1.0)
    runner, url = await serve(net.chain, "127.0.0.1", rpc_port)
    path = net.save(url)
    if as_json:
        emit_json({**net.describe(url), "file": str(path), "dev_accounts": _accounts()})
    else:
        out_console.print(f"chain JSON-RPC  {url}  (chain id {net.chain.deployment.chain_id})")
        table = Table("node", "operator", "url")
        for n in net.nodes:
            table.add_row(str(n.index), n.node.address, n.node.url)
        out_console.print(table)
        out_console.print("dev accounts (funded; local use only):")
        for i, (address, key) in enumerate(_accounts()):
            out_console.print(f"  {i:2d}  {address}  {key}")
        out_console.print(f"network file    {path}\n[dim]Ctrl-C to stop[/]")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def blocks() -> None:
        while True:
            await asyncio.sleep(block_time)
            await net.chain.mine(1)
            await net.chain.index_logs()  # while the block is recent: cheap (see contracts.logindex)

    ticker = asyncio.create_task(blocks())
    try:
        await stop.wait()
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await runner.cleanup()
        await net.stop()
        err_console.print("devnet stopped")


def _accounts() -> list[tuple[str, str]]:
    return [(dev_account(i).address, "0x" + bytes(dev_account(i).key).hex()) for i in range(1, 5)]


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

    from .demo import run_demo

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
