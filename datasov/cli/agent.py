"""``datasov agent run``: the owner's key agent, fault reporter and repair agent."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import click

from contracts.chain import Chain
from market import key_agent
from market.keystore import Keystore
from market.repair import RepairAgent
from market.reporter import FaultReporter
from storage_node.client import NodeClient

from . import queries
from .context import (
    command_runner,
    load_network,
    open_chain,
    open_keystore,
)
from .options import signer_options
from .ui import emit_json, err_console, out_console


@click.group()
def agent() -> None:
    """The owner's agent: releases keys while consent stands, reports missed proofs, repairs shares."""


@agent.command("run")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between chain checks.")
@click.option("--once", is_flag=True, help="Do one round of everything and exit.")
@click.option("--no-repair", is_flag=True, help="Only release keys and report missed proofs.")
@click.option(
    "--repair-threshold",
    type=int,
    default=None,
    help="Repair a deal when fewer shares than this are healthy (default k + 2).",
)
@click.option("--repair-every", type=float, default=30.0, show_default=True, help="Seconds between health checks.")
@signer_options
@command_runner
async def agent_run(
    poll: float,
    once: bool,
    no_repair: bool,
    repair_threshold: int | None,
    repair_every: float,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Follow purchases of your datasets and deliver keys (resumes where it stopped); report the
    storage proofs your nodes miss (they are slashed); rebuild lost shares on new nodes.

    \b
    Example:
      datasov agent run --home ./alice
      datasov agent run --home ./alice --once --json
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    account = keystore.account
    async with open_chain(network) as chain:
        deliverer = key_agent.KeyAgent(chain, keystore, home=home, poll=poll)
        reporter = FaultReporter(chain, account, poll=poll)
        async with NodeClient(timeout=10, retries=2) as client:
            repairer = RepairAgent(
                chain,
                account,
                network.directory,
                client,
                workdir=home / "repair",
                threshold=repair_threshold,
                poll=repair_every,
            )
            unservable = await _unservable(chain, keystore)
            for gap in unservable:
                err_console.print(
                    f"[yellow]cannot serve[/] dataset {gap['dataset_id']}: its data key is not in this home "
                    f"({home}); licenses waiting for it: {gap['licenses_waiting']}",
                    highlight=False,
                )
            if unservable:
                err_console.print(
                    "[dim]hint: datasov keys export (in the home that published), then keys import here[/]"
                )
            if once:
                decisions = await deliverer.tick()
                missed = await reporter.tick()
                repairs = [] if no_repair else await repairer.tick()
                result = {
                    "deliveries": [_decision(d) for d in decisions],
                    "missed_proofs_reported": [
                        {"deal_id": m.deal_id, "share": m.share_index, "epoch": m.epoch, "provider": m.provider}
                        for m in missed
                    ],
                    "repaired": {r.deal_id: r.repaired for r in repairs if r.repaired},
                    "cannot_serve": unservable,
                }
                if as_json:
                    emit_json(result)
                else:
                    for d in decisions:
                        out_console.print(f"license {d.license_id}: {d.outcome} {d.reason}")
                    for m in missed:
                        out_console.print(f"reported: deal {m.deal_id} share {m.share_index} epoch {m.epoch}")
                    for r in repairs:
                        if r.repaired:
                            out_console.print(f"deal {r.deal_id}: rebuilt shares {sorted(r.repaired)}")
                return
            err_console.print(f"agent for {account.address} following {network.rpc} (Ctrl-C to stop)")
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            workers = [deliverer, reporter] + ([] if no_repair else [repairer])
            await asyncio.gather(*(worker.run() for worker in workers))


async def _unservable(chain: Chain, keystore: Keystore) -> list[dict[str, Any]]:
    """The datasets this account releases keys for whose data key is not in this keystore, each
    with the licenses waiting for a key (the agent skips them)."""
    me = keystore.account.address.lower()
    held = set(keystore.datasets())
    mine = []
    for i in range(1, await chain.dataset_count() + 1):
        d = await chain.get_dataset(i)
        if i not in held and me in (d.owner.lower(), d.key_agent.lower()):
            mine.append(i)
    if not mine:
        return []
    waiting = [
        lic
        for lic in await queries.licenses(chain, dataset_ids=set(mine))
        if await queries.license_state(chain, lic) == "waiting for key"
    ]
    return [
        {"dataset_id": i, "licenses_waiting": [lic.license_id for lic in waiting if lic.dataset_id == i]} for i in mine
    ]


def _decision(d: key_agent.Decision) -> dict[str, Any]:
    return {
        "license_id": d.license_id,
        "dataset_id": d.dataset_id,
        "buyer": d.buyer,
        "outcome": d.outcome,
        "reason": d.reason,
    }
