"""Key guardians: ``datasov guardian run`` (an operator serves its key pieces) and
``datasov guardians DATASET`` / ``datasov guardians replace`` (an owner's guardians)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from contracts.chain import Chain
from contracts.models import Deployment
from market import guardians as owner_guardians
from market.guardian_agent import GuardianAgent, load_or_create_guardian_key
from market.keystore import Keystore
from storage_node.identity import load_or_create_operator

from .context import (
    Network,
    command_runner,
    json_option,
    load_network,
    open_chain,
    open_keystore,
)
from .options import chain_options, signer_options
from .ui import emit_json, err_console, out_console

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DEFAULT_FEE_BPS = 200


@click.group()
def guardian() -> None:
    """Serve as a key guardian: hold pieces of datasets' keys and release them to licensees."""


async def announce_key(chain: Chain, operator: LocalAccount, home: Path) -> bool:
    """Register this node's guardian key on-chain unless it already is; True if a transaction was sent."""
    public = bytes(load_or_create_guardian_key(home).public_key)
    if await chain.guardian_key_of(operator.address) == public:
        return False
    await chain.register_guardian_key(operator, public)
    return True


@guardian.command("run")
@click.option(
    "--home",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="The node's directory (operator key; the guardian key is kept there too).",
)
@click.option("--rpc", required=True, metavar="URL", help="EVM JSON-RPC endpoint.")
@click.option(
    "--deployment", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True, help="Deployment file."
)
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between chain checks.")
@click.option("--once", is_flag=True, help="Do one round and exit.")
@json_option
@command_runner
async def guardian_run(home: Path, rpc: str, deployment: Path, poll: float, once: bool, as_json: bool) -> None:
    """Announce this operator's guardian key (staked operators only) and deliver its key pieces
    for every license the contract says may be served (mayRelease) and that its own checks pass:
    consent standing, purpose allowed, deadline not too close. Logs each decision.

    \b
    Example:
      datasov guardian run --home ./node1 --rpc http://127.0.0.1:8545 --deployment net/deployment.json
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    operator = load_or_create_operator(home)
    chain = await Chain.connect(rpc, Deployment.load(deployment))
    try:
        announced = await announce_key(chain, operator, home)
        agent = GuardianAgent(chain, operator, load_or_create_guardian_key(home), home=home, poll=poll)
        if not once:
            if not as_json:
                out_console.print(f"guardian {operator.address} running (announced now: {announced})")
            await agent.run()
            return
        decisions = await agent.tick()
        result = {
            "guardian": operator.address,
            "announced": announced,
            "decisions": [
                {"license_id": d.license_id, "dataset_id": d.dataset_id, "outcome": d.outcome, "reason": d.reason}
                for d in decisions
            ],
        }
        if as_json:
            emit_json(result)
        else:
            for d in decisions:
                out_console.print(f"license {d.license_id} (dataset {d.dataset_id}): {d.outcome} {d.reason}")
    finally:
        await chain.close()


# ------------------------------------------------------------------- owner side ----


async def share_with_guardians(
    chain: Chain,
    keystore: Keystore,
    network: Network,
    dataset_id: int,
    count: int,
    threshold: int,
    *,
    fee_bps: int = DEFAULT_FEE_BPS,
    exclude: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Pick ``count`` guardians (distinct operators, distinct /24s) and share the data key t-of-m."""
    dataset = await chain.get_dataset(dataset_id)
    key = keystore.data_key_for(dataset.manifest_hash)
    candidates = await chain.guardian_candidates()
    picked = owner_guardians.pick(candidates, count, await network.directory.nodes(), exclude=exclude)
    epoch = await owner_guardians.share_key(
        chain, keystore.account, dataset_id, key, picked, threshold, fee_bps=fee_bps
    )
    return {"dataset_id": dataset_id, "epoch": epoch, "threshold": threshold, "guardians": picked}


class _ShowByDefault(click.Group):
    """``datasov guardians DATASET`` is ``datasov guardians show DATASET``."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0].isdigit():
            args = ["show", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_ShowByDefault)
def guardians() -> None:
    """A dataset's key guardians: `datasov guardians DATASET` shows them; `replace` re-shares the key.

    \b
    Example:
      datasov guardians 1 --home ./alice
      datasov guardians replace 1 --guardians 5 --threshold 3 --home ./alice
    """


@guardians.command("show")
@click.argument("dataset_id", type=int)
@chain_options
@command_runner
async def guardians_show(dataset_id: int, home: Path, rpc: str | None, as_json: bool) -> None:
    """Who guards a dataset's key (current epoch), their stake standing, bad pieces and deliveries."""
    network = load_network(home, rpc)
    async with open_chain(network, read_only=True) as chain:
        gset = await chain.guardian_set(dataset_id)
        rows: list[dict[str, Any]] = []
        delivered = await _deliveries_by_guardian(chain, dataset_id)
        for i, g in enumerate(gset.guardians if gset else (), start=1):
            rows.append(
                {
                    "index": i,
                    "guardian": g,
                    "staked": await chain.is_staked_operator(g),
                    "bad_pieces": await chain.bad_pieces(g),
                    "deliveries": delivered.get(g.lower(), 0),
                }
            )
    result = {
        "dataset_id": dataset_id,
        "epoch": gset.epoch if gset else 0,
        "threshold": gset.threshold if gset else 0,
        "fee_bps": gset.fee_bps if gset else 0,
        "guardians": rows,
    }
    if as_json:
        emit_json(result)
        return
    if gset is None:
        out_console.print(f"dataset {dataset_id} has no guardians (only your key agent releases its key)")
        return
    out_console.print(
        f"dataset {dataset_id}: {gset.threshold}-of-{len(gset.guardians)} guardians, epoch {gset.epoch}, "
        f"fee {gset.fee_bps / 100:.2f}% per piece"
    )
    for r in rows:
        flags = "" if r["staked"] else " [red]not staked[/]"
        bad = f", [red]{r['bad_pieces']} bad pieces[/]" if r["bad_pieces"] else ""
        out_console.print(f"  {r['index']}. {r['guardian']}: {r['deliveries']} pieces delivered{bad}{flags}")


async def _deliveries_by_guardian(chain: Chain, dataset_id: int) -> dict[str, int]:
    logs = await chain.licenses.events.KeyPieceDelivered().get_logs(
        from_block=chain.deployment.deployed_block, to_block="latest", argument_filters={"datasetId": dataset_id}
    )
    out: dict[str, int] = {}
    for log in logs:
        g = str(log["args"]["guardian"]).lower()
        out[g] = out.get(g, 0) + 1
    return out


@guardians.command("replace")
@click.argument("dataset_id", type=int)
@click.option("--guardians", "count", type=int, required=True, help="How many guardians (m).")
@click.option("--threshold", type=int, required=True, help="Pieces needed to rebuild the key (t).")
@click.option("--fee-bps", type=int, default=DEFAULT_FEE_BPS, show_default=True, help="Fee per piece, of the price.")
@click.option("--drop", multiple=True, metavar="ADDRESS", help="A guardian not to pick again (repeatable).")
@signer_options
@command_runner
async def guardians_replace(
    dataset_id: int,
    count: int,
    threshold: int,
    fee_bps: int,
    drop: tuple[str, ...],
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Re-share a dataset's key to a new set of guardians with a new polynomial: pieces of the old
    set no longer count or combine with the new ones, and the old commitments are retired.

    \b
    Example:
      datasov guardians replace 1 --guardians 5 --threshold 3 --drop 0xAbc... --home ./alice
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        result = await share_with_guardians(
            chain, keystore, network, dataset_id, count, threshold, fee_bps=fee_bps, exclude=drop
        )
    if as_json:
        emit_json(result)
        return
    out_console.print(
        f"dataset {dataset_id}: key re-shared {threshold}-of-{count}, epoch {result['epoch']}: "
        + ", ".join(result["guardians"])
    )
    err_console.print("[dim]pieces of the previous epoch no longer count[/]")
