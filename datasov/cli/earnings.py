"""The owner's view of their business: ``datasov mine``, ``datasov balance``, ``datasov withdraw``.

A license's price is escrowed in the license contract at purchase. Once its key is delivered and
the dispute window has closed, the owner claims it (``claimPayment``; the key agent does this as
it runs, ``withdraw`` does it for whatever is left). The storage market keeps a separate balance
per account (storage fees earned, deal refunds), taken out with its ``withdraw``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from contracts.chain import Chain
from contracts.models import License, LicenseStatus

from . import queries
from .browse import add_titles, datasets_json
from .context import (
    command_runner,
    home_option,
    json_option,
    load_network,
    open_chain,
    open_keystore,
    passphrase_option,
    rpc_option,
)
from .ui import emit_json, out_console, tokens


def _sold(lic: License) -> bool:
    return lic.status == LicenseStatus.DELIVERED


async def _claimable(chain: Chain, lic: License) -> bool:
    window = chain.deployment.dispute_window
    return _sold(lic) and not lic.paid and await chain.timestamp() > lic.delivered_at + window


@click.command()
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def mine(home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool) -> None:
    """Your datasets: title, licenses sold, revenue, keys still to deliver, consent, storage health.

    Revenue counts the price of every license whose key was delivered and not disputed (paid to
    you, or claimable once its dispute window closes); keys pending are purchases waiting for your
    key agent (`datasov agent run`).

    \b
    Example:
      datasov mine --json | jq '.[] | {id, title, revenue_tokens, keys_pending}'
    """
    network = load_network(home, rpc)
    address = open_keystore(home, passphrase_file).address
    async with open_chain(network, read_only=True) as chain:
        ids = await chain.datasets_of(address)
        rows = [info for info, _ in await datasets_json(chain, ids)]
        await add_titles(chain, network, home, rows)
        sold = await queries.licenses(chain, dataset_ids=set(ids))
        for r in rows:
            mine_ = [lic for lic in sold if lic.dataset_id == r["id"]]
            delivered = [lic for lic in mine_ if _sold(lic)]
            revenue = sum(lic.price for lic in delivered)
            pending = [lic for lic in mine_ if await queries.license_state(chain, lic) == "waiting for key"]
            r.update(
                licenses_sold=len(delivered),
                revenue=str(revenue),
                revenue_tokens=tokens(revenue),
                keys_pending=len(pending),
                consent="revoked" if r["consent_revoked_at"] else "stands",
            )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out_console.print(f"{address} owns no datasets (publish one: datasov publish PATH)")
        return
    table = Table("id", "title", "licenses sold", "revenue", "keys pending", "consent", "storage")
    for r in rows:
        h = r["health"]
        storage = (
            f"[green]servable[/] {h['healthy']}/{h['n']}" if h["servable"] else f"[red]unservable[/]: {h['reason']}"
        )
        keys = f"[yellow]{r['keys_pending']}[/]" if r["keys_pending"] else "0"
        table.add_row(
            str(r["id"]),
            r["title"] or "[dim]?[/]",
            str(r["licenses_sold"]),
            r["revenue_tokens"],
            keys,
            r["consent"],
            storage,
        )
    out_console.print(table)


async def _balance(chain: Chain, address: str) -> dict[str, Any]:
    owned = set(await chain.datasets_of(address))
    sold = await queries.licenses(chain, dataset_ids=owned)
    claimable = [lic for lic in sold if await _claimable(chain, lic)]
    in_window = [lic for lic in sold if _sold(lic) and not lic.paid and lic not in claimable]
    escrow = [lic for lic in sold if lic.status == LicenseStatus.PENDING]
    amounts = {
        "wallet": await chain.balance_of(address),
        "claimable": sum(lic.price for lic in claimable),
        "in_dispute_window": sum(lic.price for lic in in_window),
        "escrowed_until_delivery": sum(lic.price for lic in escrow),
        "storage_market": await chain.storage_balance(address),
    }
    return {
        "address": address,
        **{k: str(v) for k, v in amounts.items()},
        "tokens": {k: tokens(v) for k, v in amounts.items()},
        "claimable_licenses": [lic.license_id for lic in claimable],
    }


@click.command()
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def balance(home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool) -> None:
    """Your tokens: in your wallet, license payments you can claim now, payments still in their
    dispute window or waiting for delivery, and your storage-market balance.

    \b
    Example:
      datasov balance && datasov withdraw
    """
    network = load_network(home, rpc)
    address = open_keystore(home, passphrase_file).address
    async with open_chain(network, read_only=True) as chain:
        result = await _balance(chain, address)
    if as_json:
        emit_json(result)
        return
    t = result["tokens"]
    out_console.print(f"{address}")
    out_console.print(f"  wallet                    {t['wallet']}")
    out_console.print(f"  claimable now             {t['claimable']}  (licenses {result['claimable_licenses']})")
    out_console.print(f"  in the dispute window     {t['in_dispute_window']}")
    out_console.print(f"  escrowed until delivery   {t['escrowed_until_delivery']}")
    out_console.print(f"  storage market balance    {t['storage_market']}")
    if result["claimable_licenses"] or int(result["storage_market"]):
        out_console.print("take it: datasov withdraw")


@click.command()
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def withdraw(home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool) -> None:
    """Move your earnings to your wallet: claim every license payment whose dispute window closed,
    and withdraw your storage-market balance.

    \b
    Example:
      datasov withdraw --json
    """
    network = load_network(home, rpc)
    account = open_keystore(home, passphrase_file).account
    async with open_chain(network) as chain:
        before = await _balance(chain, account.address)
        for license_id in before["claimable_licenses"]:
            await chain.claim_payment(account, license_id)
        market = int(before["storage_market"])
        if market:
            await chain.withdraw(account)
        wallet = await chain.balance_of(account.address)
    moved = int(before["claimable"]) + market
    result = {
        "claimed_licenses": before["claimable_licenses"],
        "claimed": before["claimable"],
        "storage_market": str(market),
        "moved": str(moved),
        "wallet": str(wallet),
    }
    if as_json:
        emit_json(result)
    elif moved:
        out_console.print(f"moved {tokens(moved)} tokens to {account.address}; wallet now {tokens(wallet)}")
    else:
        out_console.print("nothing to withdraw yet (see `datasov balance`)")
