"""The curator's pool commands: ``datasov pool create|accept|reject|release`` (registered on the
``pool`` group by :mod:`datasov.cli.pools`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from contracts.chain import Chain
from market import pools
from market.keystore import Keystore

from .context import TOKENS, command_runner
from .options import signer_options
from .pools_common import print_result, with_chain
from .publish import TERMS_PRESETS
from .ui import tokens


@click.command("create")
@click.option("--price", type=TOKENS, required=True, help="License price in tokens.")
@click.option("--curator-fee", type=float, default=0.0, show_default=True, help="Curator's share of a sale, in %.")
@click.option("--terms", type=click.Choice(sorted(TERMS_PRESETS)), default="training", show_default=True)
@click.option("--rules", default="", help="What the pool accepts (its hash is on-chain).")
@click.option("--key-agent", default=None, help="Address that may release keys for you (default: you only).")
@signer_options
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

    result = await with_chain(home, rpc, passphrase_file, act)
    print_result(
        result, as_json, f"pool {result['pool_id']} opened at {tokens(price)} tokens, curator fee {curator_fee}%"
    )


@click.command("accept")
@click.argument("contribution_id", type=int)
@click.option("--weight", type=click.IntRange(min=0), default=0, help="Its share of sales (default: its size).")
@signer_options
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

    result = await with_chain(home, rpc, passphrase_file, act)
    print_result(result, as_json, f"contribution {contribution_id} accepted with weight {result['weight']}")


@click.command("reject")
@click.argument("contribution_id", type=int)
@signer_options
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

    print_result(await with_chain(home, rpc, passphrase_file, act), as_json, f"contribution {contribution_id} rejected")


@click.command("release")
@click.argument("license_id", type=int)
@signer_options
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

    result = await with_chain(home, rpc, passphrase_file, act)
    summary = ", ".join(f"{r['contribution_id']}: {r['outcome']}" for r in result["releases"])
    print_result(result, as_json, f"pool license {license_id}: {summary or 'nothing to release'}")
