"""Data pools: ``datasov pool create|show|contribute|accept|reject|withdraw|claim|buy|release|fetch|receipt``
and ``datasov pools``. The flows are :mod:`market.pools`; every command takes ``--json``.

This module holds the group, what anyone reads (``pool show``, ``pools``) and the contributors'
commands; the curator's are in :mod:`datasov.cli.pools_curator`, the lab's in :mod:`datasov.cli.pools_lab`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from contracts.chain import Chain
from market import pools
from market.keystore import Keystore

from . import pools_curator, pools_lab
from .context import command_runner, confirm, load_network, open_chain, yes_option
from .options import signer_options
from .pools_common import print_result, with_chain
from .ui import emit_json, out_console, tokens


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


@pool.command("show")
@click.argument("pool_id", type=int)
@signer_options
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
@signer_options
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
@signer_options
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

    result = await with_chain(home, rpc, passphrase_file, act)
    print_result(
        result, as_json, f"contribution {result['contribution_id']}: dataset {dataset_id} offered to pool {pool_id}"
    )


@pool.command("withdraw")
@click.argument("contribution_id", type=int)
@yes_option
@signer_options
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

    print_result(
        await with_chain(home, rpc, passphrase_file, act), as_json, f"contribution {contribution_id} withdrawn"
    )


@pool.command("claim")
@click.argument("contribution_ids", type=int, nargs=-1)
@click.option("--curator", "curator_pool", type=int, default=None, help="Claim this pool's curator fees instead.")
@signer_options
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

    result = await with_chain(home, rpc, passphrase_file, act)
    print_result(result, as_json, f"paid {tokens(int(result['total']))} tokens ({result['paid']})")


for _command in (
    pools_curator.pool_create,
    pools_curator.pool_accept,
    pools_curator.pool_reject,
    pools_curator.pool_release,
    pools_lab.pool_buy,
    pools_lab.pool_fetch,
    pools_lab.pool_receipt,
):
    pool.add_command(_command)
