"""The lab's commands: license buy / refund, licenses, fetch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import click
from rich.table import Table

from contracts.chain import Chain
from contracts.errors import ReadOnlyConnection
from contracts.models import License, LicenseStatus
from contracts.terms import Purpose
from market import buyer
from market.fetch_phases import mark
from market.keystore import Keystore
from storage_node.client import NodeClient

from . import fastexit, queries
from .context import (
    PURPOSE,
    TOKENS,
    Network,
    command_runner,
    confirm,
    home_option,
    json_option,
    load_network,
    open_chain,
    open_keystore,
    passphrase,
    passphrase_option,
    rpc_option,
    yes_option,
)
from .refusals import local_time
from .ui import emit_json, err_console, fail, out_console, stage_progress, tokens

PURPOSES = ", ".join(p.name.lower() for p in Purpose)


@click.group()
def license() -> None:
    """Buy licenses and get refunds."""


@license.command("buy")
@click.argument("dataset_id", type=int)
@click.option("--purpose", type=PURPOSE, default="ai_training", show_default=True, help=f"One of: {PURPOSES}.")
@click.option(
    "--max-price",
    type=TOKENS,
    default=None,
    help="Refuse to pay more than this many tokens (default: the listed price).",
)
@click.option(
    "--terms-version",
    type=int,
    default=None,
    help="The offer version you agreed to (`datasov show`); the purchase reverts if the owner changed it "
    "(default: the version listed now).",
)
@click.option("--wait", type=float, default=60.0, show_default=True, help="Seconds to wait for the key (0: don't).")
@yes_option
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def license_buy(
    dataset_id: int,
    purpose: Purpose,
    max_price: int | None,
    terms_version: int | None,
    wait: float,
    yes: bool,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Buy a license to use a dataset for a purpose; the payment is escrowed until the key arrives.

    Takes a DATASET id and prints the LICENSE id it bought; `datasov fetch --dataset DATASET`
    then picks that license. Asks first if you already hold a live license for the same dataset
    and purpose (--yes to buy anyway).

    \b
    Example:
      datasov license buy 1 --purpose ai_training && datasov fetch --dataset 1 -o ./data
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        held = [
            (lic, state)
            for lic in await queries.licenses(chain, buyer=keystore.account.address, dataset_ids={dataset_id})
            if lic.purpose == purpose and (state := await queries.license_state(chain, lic)) in _LIVE
        ]
        if held:
            listed = ", ".join(f"license {lic.license_id} ({state})" for lic, state in held)
            err_console.print(
                f"[yellow]warning:[/] you already hold {listed} for dataset {dataset_id}, {purpose.name.lower()}"
            )
            confirm(f"buy another license for dataset {dataset_id} ({purpose.name.lower()})?", yes=yes)
        license_id = await buyer.buy(
            chain, keystore, dataset_id, purpose, max_price=max_price, terms_version=terms_version
        )
        delivered = False
        if wait > 0:
            waiting = await _waiting_for(chain, await chain.get_license(license_id))
            with err_console.status(waiting):
                await buyer.wait_for_key(chain, keystore, license_id, within=wait)
            delivered = True
    if as_json:
        emit_json({"license_id": license_id, "dataset_id": dataset_id, "key_delivered": delivered})
    else:
        state = "key delivered" if delivered else "waiting for the key"
        out_console.print(f"license [bold]{license_id}[/] for dataset {dataset_id}: {state}")
        out_console.print(
            f"fetch it: datasov fetch --dataset {dataset_id} -o OUT   (or: datasov fetch {license_id} ...)"
        )


_LIVE = ("valid", "waiting for key")


async def _waiting_for(chain: Chain, lic: License) -> str:
    """What a waiting purchase waits for, in one line."""
    dataset = await chain.get_dataset(lic.dataset_id)
    agent = dataset.key_agent if int(dataset.key_agent, 16) else dataset.owner
    gset = await chain.guardian_set(lic.dataset_id)
    also = f" or {gset.threshold} of its {len(gset.guardians)} key guardians" if gset else ""
    return (
        f"license {lic.license_id}: waiting for the key agent of dataset {lic.dataset_id} ({agent}){also} to deliver "
        f"the key; due by {local_time(lic.delivery_deadline)}, refundable after that"
    )


@license.command("refund")
@click.argument("license_id", type=int)
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def license_refund(
    license_id: int, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """Take your payment back for a license whose key never came (after the delivery deadline).

    \b
    Example:
      datasov license refund 7
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        await chain.refund(keystore.account, license_id)
        lic = await chain.get_license(license_id)
    if as_json:
        emit_json({"license_id": license_id, "refunded": str(lic.price)})
    else:
        out_console.print(f"license {license_id} refunded ({tokens(lic.price)} tokens back to {lic.buyer})")


@click.command("licenses")
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def licenses(home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool) -> None:
    """List the licenses you bought, with their state (valid, waiting for key, refundable, expired...).

    \b
    Example:
      datasov licenses --json | jq '.[] | select(.state == "valid") | .license_id'
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network, read_only=True) as chain:
        rows = [await queries.license_json(chain, lic) for lic in await queries.licenses(chain, buyer=keystore.address)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out_console.print(f"no licenses bought by {keystore.address}")
        return
    table = Table("license", "dataset", "purpose", "state", "key", "expires", "price paid", "bought")
    for r in rows:
        table.add_row(
            str(r["license_id"]),
            str(r["dataset_id"]),
            r["purpose"],
            r["state"],
            "delivered" if r["key_delivered"] else "not yet",
            r["expires"],
            tokens(int(r["price"])),
            r["purchased"],
        )
    out_console.print(table)


@click.command()
@click.argument("license_id", type=int, required=False)
@click.option(
    "--dataset", "dataset_id", type=int, default=None, help="Fetch this dataset with your valid license for it."
)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Where to write the dataset.")
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def fetch(
    license_id: int | None,
    dataset_id: int | None,
    out: Path,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Fetch a licensed dataset: every block verified against the on-chain commitment, then decrypted.

    Give the LICENSE id (`datasov licenses` lists them), or --dataset and the license is picked
    for you. Exits 5 while the key has not been delivered.

    \b
    Example:
      datasov fetch --dataset 1 -o ./data      (or: datasov fetch LICENSE -o ./data)
    """
    mark("start-up: imports, click")
    if (license_id is None) == (dataset_id is None):
        raise click.UsageError("give a LICENSE id or --dataset DATASET (one of the two)")
    if out.exists():
        fail(f"{out} already exists", hint="choose a new path with -o")
    network = load_network(home, rpc)
    secret = passphrase(home, passphrase_file)
    # Argon2id (libsodium, GIL released) on a thread while the chain is connected and the license read
    unlocking = asyncio.ensure_future(asyncio.to_thread(Keystore.open, home, secret))
    try:
        try:  # a reader (raw JSON-RPC, web3 not imported): a fetch sends a transaction only to dispute
            report, license_id = await _fetch(network, unlocking, license_id, dataset_id, out, as_json, read_only=True)
        except ReadOnlyConnection:  # a wrong key or a bad piece to prove on-chain: again, with a chain that sends
            report, license_id = await _fetch(network, unlocking, license_id, dataset_id, out, as_json, read_only=False)
    finally:  # a failure before the keystore was needed: the unlock is still awaited (a thread is not cancelled)
        await asyncio.gather(unlocking, return_exceptions=True)
    mark("node client, chain and directory closed")
    fastexit.request()  # the copy is synced and in place: no interpreter teardown after the report
    if as_json:
        emit_json(report.to_json())
        return
    out_console.print(
        f"wrote {report.bytes_written:,} bytes to {out} in {report.seconds:.1f} s from license {license_id} "
        f"(shares used {report.shares_used}; unreachable {sorted(report.unreachable)})"
    )


async def _fetch(
    network: Network,
    unlocking: Awaitable[Keystore],
    license_id: int | None,
    dataset_id: int | None,
    out: Path,
    as_json: bool,
    *,
    read_only: bool,
) -> tuple[buyer.FetchReport, int]:
    """The license picked (or given), checked, its dataset fetched into ``out``: the report and the
    license. ``unlocking``: the keystore being opened (awaited when its address or keys are needed)."""
    async with open_chain(network, read_only=read_only) as chain:
        if license_id is None:
            assert dataset_id is not None
            lic, state = await _pick_license(chain, (await unlocking).address, dataset_id)
            license_id = lic.license_id
        else:
            lic = await chain.get_license(license_id)
            state = None
        if lic.status == LicenseStatus.PENDING:
            refundable = (state or await queries.license_state(chain, lic)) == "refundable"
            raise buyer.KeyNotDelivered(
                f"the key for license {license_id} has not been delivered yet "
                f"(due by {local_time(lic.delivery_deadline)})",
                refundable=refundable,
            )
        if state == "valid":  # the pick read it delivered and valid on-chain: not asked again
            dataset = await chain.get_dataset(lic.dataset_id)
            checked: License | None = lic
        else:
            dataset, checked = await asyncio.gather(
                chain.get_dataset(lic.dataset_id), buyer.usable_license(chain, lic.license_id)
            )
        keystore = await unlocking
        mark("cli: keystore, chain, pick license")
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
                    checked=(checked, dataset),
                )
    return report, license_id


async def _pick_license(chain: Chain, buyer_address: str, dataset_id: int) -> tuple[License, str]:
    """The caller's newest valid license for the dataset and its state (``queries.license_state``);
    else a clear reason why there is none."""
    held = await queries.licenses(chain, buyer=buyer_address, dataset_ids={dataset_id})
    states = list(zip(held, await asyncio.gather(*(queries.license_state(chain, lic) for lic in held)), strict=True))
    for lic, state in reversed(states):
        if state == "valid":
            return lic, state
    for lic, state in reversed(states):
        if state in ("waiting for key", "refundable"):
            return lic, state  # fetch says the key is not there yet (exit 5)
    if states:
        listed = ", ".join(f"license {lic.license_id} is {state}" for lic, state in states)
        raise buyer.LicenseNotUsable(f"no valid license for dataset {dataset_id}: {listed}")
    raise buyer.LicenseNotUsable(
        f"you hold no license for dataset {dataset_id} (buy one: datasov license buy {dataset_id})"
    )
