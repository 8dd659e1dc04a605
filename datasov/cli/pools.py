"""Data pools: ``datasov pool create|show|contribute|accept|reject|withdraw|claim|buy|release|fetch|receipt``
and ``datasov pools``. The flows are :mod:`market.pools`; every command takes ``--json``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from contracts.chain import Chain
from contracts.terms import Purpose
from market import pools
from market.keystore import Keystore
from storage_node.client import NodeClient

from .context import (
    PURPOSE,
    TOKENS,
    command_runner,
    confirm,
    home_option,
    json_option,
    load_network,
    open_chain,
    open_keystore,
    passphrase_option,
    rpc_option,
    yes_option,
)
from .publish import TERMS_PRESETS
from .ui import emit_json, fail, out_console, tokens

Action = Callable[[Chain, Keystore], Awaitable[dict[str, Any]]]


async def _with_chain(home: Path, rpc: str | None, passphrase_file: Path | None, action: Action) -> dict[str, Any]:
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        return await action(chain, keystore)


def _print(result: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        emit_json(result)
    else:
        out_console.print(line, highlight=False)


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in (json_option, passphrase_option, rpc_option, home_option):
        fn = option(fn)
    return fn


@click.group()
def pool() -> None:
    """Data pools: many contributors, one dataset a lab licenses, every sale split on-chain by weight.

    \b
    Example (a curator, two contributors, a lab):
      datasov pool create --price 10 --curator-fee 5 --rules "one folder of text each" --home CURATOR
      datasov pool contribute 1 DATASET --home ALICE       (a dataset ALICE published)
      datasov pool accept 1 --weight 1000 --home CURATOR
      datasov pool buy 1 --home LAB && datasov pool release 1 --home CURATOR
      datasov pool fetch 1 -o ./pool-data --home LAB && datasov pool claim 1 --home ALICE
    """


@pool.command("create")
@click.option("--price", type=TOKENS, required=True, help="License price in tokens.")
@click.option("--curator-fee", type=float, default=0.0, show_default=True, help="Curator's share of a sale, in %.")
@click.option("--terms", type=click.Choice(sorted(TERMS_PRESETS)), default="training", show_default=True)
@click.option("--rules", default="", help="What the pool accepts (its hash is on-chain).")
@click.option("--key-agent", default=None, help="Address that may release keys for you (default: you only).")
@_common
@command_runner
async def pool_create(
    price: int,
    curator_fee: float,
    terms: str,
    rules: str,
    key_agent: str | None,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Open a pool you curate. Its key-release key is made in your keystore: contributors seal
    their data keys to it, so `datasov pool release` can serve sales while they are offline.

    \b
    Example:
      datasov pool create --price 10 --curator-fee 5 --terms training --rules "text only"
    """
    if not 0 <= curator_fee <= 100:
        raise click.BadParameter("a percentage from 0 to 100", param_hint="--curator-fee")
    fee_bps = round(curator_fee * 100)

    async def act(chain: Chain, keystore: Keystore) -> dict[str, Any]:
        pool_id = await pools.create(
            chain, keystore, terms=TERMS_PRESETS[terms], price=price, curator_fee_bps=fee_bps, rules=rules,
            key_agent=key_agent,
        )  # fmt: skip
        return {"pool_id": pool_id, "price": str(price), "curator_fee_bps": fee_bps, "terms": terms}

    result = await _with_chain(home, rpc, passphrase_file, act)
    _print(result, as_json, f"pool {result['pool_id']} opened at {tokens(price)} tokens, curator fee {curator_fee}%")


@pool.command("show")
@click.argument("pool_id", type=int)
@_common
@command_runner
async def pool_show(pool_id: int, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool) -> None:
    """A pool: its offer, what it has earned, and every contribution with status, weight and earnings.

    \b
    Example:
      datasov pool show 1 --json
    """
    network = load_network(home, rpc)
    async with open_chain(network) as chain:
        p = await chain.get_pool(pool_id)
        rows = []
        for c in await chain.pool_contributions(pool_id):
            rows.append({**c.to_json(), "earned": str(await chain.earned(c.contribution_id))})
        terms = await chain.get_pool_terms(pool_id)
    result = {**p.to_json(), "terms": terms.to_json(), "contributions": rows}
    if as_json:
        emit_json(result)
        return
    out_console.print(
        f"pool {pool_id}: curator {p.curator}, price {tokens(p.price)}, fee {p.curator_fee_bps / 100}%, "
        f"{p.members} member(s), weight {p.total_weight:,}, revenue {tokens(p.revenue)}",
        highlight=False,
    )
    table = Table("contribution", "dataset", "contributor", "status", "weight", "earned", "claimed")
    for r in rows:
        table.add_row(
            str(r["contribution_id"]), str(r["dataset_id"]), r["contributor"], r["status"], r["weight"],
            tokens(int(r["earned"])), tokens(int(r["claimed"])),
        )  # fmt: skip
    out_console.print(table)


@click.command("pools")
@_common
@command_runner
async def pools_list(home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool) -> None:
    """Every pool on the network: curator, price, members, weight and revenue.

    \b
    Example:
      datasov pools --json
    """
    network = load_network(home, rpc)
    async with open_chain(network, read_only=True) as chain:
        found = [await chain.get_pool(i) for i in range(1, await chain.pool_count() + 1)]
    if as_json:
        emit_json([p.to_json() for p in found])
        return
    table = Table("pool", "curator", "price", "fee %", "members", "weight", "revenue")
    for p in found:
        table.add_row(
            str(p.pool_id), p.curator, tokens(p.price), f"{p.curator_fee_bps / 100}", str(p.members),
            f"{p.total_weight:,}", tokens(p.revenue),
        )  # fmt: skip
    out_console.print(table)


@pool.command("contribute")
@click.argument("pool_id", type=int)
@click.argument("dataset_id", type=int)
@_common
@command_runner
async def pool_contribute(
    pool_id: int, dataset_id: int, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """Offer a dataset you published to a pool; its data key is sealed to the pool's key release.
    The curator then accepts it (and sets its weight) or rejects it.

    \b
    Example:
      datasov pool contribute 1 7
    """

    async def act(chain: Chain, keystore: Keystore) -> dict[str, Any]:
        cid = await pools.contribute(chain, keystore, pool_id, dataset_id)
        return {"contribution_id": cid, "pool_id": pool_id, "dataset_id": dataset_id}

    result = await _with_chain(home, rpc, passphrase_file, act)
    _print(result, as_json, f"contribution {result['contribution_id']}: dataset {dataset_id} offered to pool {pool_id}")


@pool.command("accept")
@click.argument("contribution_id", type=int)
@click.option("--weight", type=click.IntRange(min=0), default=0, help="Its share of sales (default: its size).")
@_common
@command_runner
async def pool_accept(
    contribution_id: int, weight: int, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """Accept a contribution into your pool with a weight (curator only; never your own).

    \b
    Example:
      datasov pool accept 3 --weight 1000
    """

    async def act(chain: Chain, keystore: Keystore) -> dict[str, Any]:
        await chain.accept_contribution(keystore.account, contribution_id, weight)
        c = await chain.get_contribution(contribution_id)
        return {"contribution_id": contribution_id, "weight": str(c.weight), "status": c.status.name.lower()}

    result = await _with_chain(home, rpc, passphrase_file, act)
    _print(result, as_json, f"contribution {contribution_id} accepted with weight {result['weight']}")


@pool.command("reject")
@click.argument("contribution_id", type=int)
@_common
@command_runner
async def pool_reject(
    contribution_id: int, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """Reject a pending contribution (curator only): it never earns and is never released.

    \b
    Example:
      datasov pool reject 4
    """

    async def act(chain: Chain, keystore: Keystore) -> dict[str, Any]:
        await chain.reject_contribution(keystore.account, contribution_id)
        return {"contribution_id": contribution_id, "status": "rejected"}

    _print(await _with_chain(home, rpc, passphrase_file, act), as_json, f"contribution {contribution_id} rejected")


@pool.command("withdraw")
@click.argument("contribution_id", type=int)
@yes_option
@_common
@command_runner
async def pool_withdraw(
    contribution_id: int, yes: bool, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """Withdraw your consent for a contribution, for good: no license bought from now on includes
    it (and, under revocable terms, no earlier one gets its key any more). What it earned stays
    claimable. Asks first (--yes to skip).

    \b
    Example:
      datasov pool withdraw 3 --yes
    """
    confirm(f"withdraw contribution {contribution_id} from its pool?", yes=yes)

    async def act(chain: Chain, keystore: Keystore) -> dict[str, Any]:
        await chain.withdraw_contribution(keystore.account, contribution_id)
        return {"contribution_id": contribution_id, "status": "withdrawn"}

    _print(await _with_chain(home, rpc, passphrase_file, act), as_json, f"contribution {contribution_id} withdrawn")


@pool.command("claim")
@click.argument("contribution_ids", type=int, nargs=-1)
@click.option("--curator", "curator_pool", type=int, default=None, help="Claim this pool's curator fees instead.")
@_common
@command_runner
async def pool_claim(
    contribution_ids: tuple[int, ...],
    curator_pool: int | None,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Pay out what contributions earned (to their contributors), or a pool's curator fees.

    \b
    Example:
      datasov pool claim 3 5        (or: datasov pool claim --curator 1)
    """
    if not contribution_ids and curator_pool is None:
        raise click.UsageError("give CONTRIBUTION ids, or --curator POOL")

    async def act(chain: Chain, keystore: Keystore) -> dict[str, Any]:
        paid = {str(c): str(await chain.claim_contribution(keystore.account, c)) for c in contribution_ids}
        if curator_pool is not None:
            paid[f"curator:{curator_pool}"] = str(await chain.claim_curator(keystore.account, curator_pool))
        return {"paid": paid, "total": str(sum(int(v) for v in paid.values()))}

    result = await _with_chain(home, rpc, passphrase_file, act)
    _print(result, as_json, f"paid {tokens(int(result['total']))} tokens ({result['paid']})")


@pool.command("buy")
@click.argument("pool_id", type=int)
@click.option("--purpose", type=PURPOSE, default="ai_training", show_default=True)
@click.option("--max-price", type=TOKENS, default=None, help="Refuse to pay more (default: the listed price).")
@_common
@command_runner
async def pool_buy(
    pool_id: int,
    purpose: Purpose,
    max_price: int | None,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """License a pool as it stands now (the contributions accepted and consented at this block).
    The price is split at once between the curator and the contributors by weight.

    \b
    Example:
      datasov pool buy 1 --purpose ai_training
    """

    async def act(chain: Chain, keystore: Keystore) -> dict[str, Any]:
        lic = await pools.buy(chain, keystore, pool_id, purpose, max_price=max_price)
        record = await chain.get_pool_license(lic)
        return {"license_id": lic, "pool_id": pool_id, "contributions": record.members, "price": str(record.price)}

    result = await _with_chain(home, rpc, passphrase_file, act)
    _print(result, as_json, f"pool license {result['license_id']}: {result['contributions']} contribution(s)")


@pool.command("release")
@click.argument("license_id", type=int)
@_common
@command_runner
async def pool_release(
    license_id: int, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """Release the keys of a pool license (curator or its key agent): one delivery per covered
    contribution, each checked on-chain (in the snapshot, consent standing, servable).

    \b
    Example:
      datasov pool release 1
    """

    async def act(chain: Chain, keystore: Keystore) -> dict[str, Any]:
        decided = await pools.release(chain, keystore, license_id)
        rows = [{"contribution_id": r.contribution_id, "outcome": r.outcome, "reason": r.reason} for r in decided]
        return {"license_id": license_id, "releases": rows}

    result = await _with_chain(home, rpc, passphrase_file, act)
    summary = ", ".join(f"{r['contribution_id']}: {r['outcome']}" for r in result["releases"])
    _print(result, as_json, f"pool license {license_id}: {summary or 'nothing to release'}")


@pool.command("fetch")
@click.argument("license_id", type=int)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="New folder to write.")
@_common
@command_runner
async def pool_fetch(
    license_id: int, out: Path, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """Fetch a pool license as one dataset: one folder per contribution, each verified against its
    own on-chain commitment and decrypted with its own delivered key.

    \b
    Example:
      datasov pool fetch 1 -o ./pool-data
    """
    if out.exists():
        fail(f"{out} already exists", hint="choose a new path with -o")
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain, NodeClient() as client:
        report = await pools.fetch(chain, keystore, network.directory, client, license_id, out)
    _print(
        report.to_json(), as_json, f"wrote {report.bytes_written:,} bytes in {len(report.folders)} folder(s) to {out}"
    )


@pool.command("receipt")
@click.argument("license_id", type=int)
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write it here.")
@_common
@command_runner
async def pool_receipt(
    license_id: int, out: Path | None, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """The consent receipt of a pool license: every contribution in its snapshot with contributor,
    weight, commitment root and manifest hash, and whether it is still covered.

    \b
    Example:
      datasov pool receipt 1 -o receipt.json
    """
    network = load_network(home, rpc)
    async with open_chain(network) as chain:
        receipt = await pools.receipt(chain, license_id)
    if out is not None:
        out.write_text(json.dumps(receipt, indent=2, sort_keys=True) + "\n")
    _print(
        receipt, as_json, f"pool license {license_id}: {len(receipt['contributions'])} contribution(s) in its snapshot"
    )
