"""The lab's pool commands: ``datasov pool buy|fetch|receipt`` (registered on the ``pool`` group
by :mod:`datasov.cli.pools`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from contracts.chain import Chain
from contracts.terms import Purpose
from market import pools
from market.keystore import Keystore
from storage_node.client import NodeClient

from .context import PURPOSE, TOKENS, command_runner, load_network, open_chain, open_keystore
from .options import signer_options
from .pools_common import print_result, with_chain
from .ui import fail


@click.command("buy")
@click.argument("pool_id", type=int)
@click.option("--purpose", type=PURPOSE, default="ai_training", show_default=True)
@click.option("--max-price", type=TOKENS, default=None, help="Refuse to pay more (default: the listed price).")
@signer_options
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

    result = await with_chain(home, rpc, passphrase_file, act)
    print_result(result, as_json, f"pool license {result['license_id']}: {result['contributions']} contribution(s)")


@click.command("fetch")
@click.argument("license_id", type=int)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="New folder to write.")
@signer_options
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
    print_result(
        report.to_json(), as_json, f"wrote {report.bytes_written:,} bytes in {len(report.folders)} folder(s) to {out}"
    )


@click.command("receipt")
@click.argument("license_id", type=int)
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write it here.")
@signer_options
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
    print_result(
        receipt, as_json, f"pool license {license_id}: {len(receipt['contributions'])} contribution(s) in its snapshot"
    )
