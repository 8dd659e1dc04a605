"""The lab's commands: license buy / refund, fetch."""

from __future__ import annotations

from pathlib import Path

import click

from market import buyer
from market.terms import Purpose
from storage_node.client import NodeClient

from .context import (
    command_runner,
    home_option,
    json_option,
    load_network,
    open_chain,
    open_keystore,
    parse_amount,
    passphrase_option,
    rpc_option,
)
from .ui import emit_json, err_console, fail, out_console, stage_progress

# --------------------------------------------------------------------------- license ----


@click.group()
def license() -> None:
    """Buy licenses and get refunds."""


@license.command("buy")
@click.argument("dataset_id", type=int)
@click.option(
    "--purpose",
    default="ai_training",
    show_default=True,
    help="ai_training, ai_generative_training, ai_inference or data_mining.",
)
@click.option("--max-price", default=None, help="Refuse to pay more than this many tokens (default: the listed price).")
@click.option(
    "--terms-version",
    type=int,
    default=None,
    help="The offer version you agreed to (`datasov show`); the purchase reverts if the owner changed it "
    "(default: the version listed now).",
)
@click.option("--wait", type=float, default=60.0, show_default=True, help="Seconds to wait for the key (0: don't).")
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def license_buy(
    dataset_id: int,
    purpose: str,
    max_price: str | None,
    terms_version: int | None,
    wait: float,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Buy a license to use a dataset for a purpose; the payment is escrowed until the key arrives.

    \b
    Example:
      datasov license buy 1 --purpose ai_training && datasov fetch 1 -o ./data
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        limit = parse_amount(max_price) if max_price is not None else None
        license_id = await buyer.buy(
            chain, keystore, dataset_id, Purpose.parse(purpose), max_price=limit, terms_version=terms_version
        )
        delivered = False
        if wait > 0:
            with err_console.status(f"license {license_id}: waiting for the owner's key agent..."):
                await buyer.wait_for_key(chain, keystore, license_id, within=wait)
            delivered = True
    if as_json:
        emit_json({"license_id": license_id, "dataset_id": dataset_id, "key_delivered": delivered})
    else:
        state = "key delivered" if delivered else "waiting for the key"
        out_console.print(f"license [bold]{license_id}[/] for dataset {dataset_id}: {state}")


@license.command("refund")
@click.argument("license_id", type=int)
@home_option
@rpc_option
@passphrase_option
@command_runner
async def license_refund(license_id: int, home: Path, rpc: str | None, passphrase_file: Path | None) -> None:
    """Take your payment back for a license whose key never came (after the delivery deadline).

    \b
    Example:
      datasov license refund 7
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        await chain.refund(keystore.account, license_id)
    out_console.print(f"license {license_id} refunded")


# ----------------------------------------------------------------------------- fetch ----


@click.command()
@click.argument("license_id", type=int)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Where to write the dataset.")
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def fetch(
    license_id: int, out: Path, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """Fetch a licensed dataset: every block verified against the on-chain commitment, then decrypted.

    \b
    Example:
      datasov fetch 1 -o ./corpus
    """
    if out.exists():
        fail(f"{out} already exists", hint="choose a new path with -o")
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        dataset = await chain.get_dataset((await chain.get_license(license_id)).dataset_id)
        async with NodeClient() as client:
            with stage_progress(enabled=not as_json) as progress:
                report = await buyer.fetch(
                    chain,
                    keystore,
                    network.directory,
                    client,
                    license_id,
                    out,
                    progress=lambda nbytes: progress("fetch", nbytes, dataset.plaintext_size),
                )
    if as_json:
        emit_json(report.to_json())
        return
    out_console.print(
        f"wrote {report.bytes_written:,} bytes to {out} in {report.seconds:.1f} s "
        f"(shares used {report.shares_used}; unreachable {sorted(report.unreachable)})"
    )
