"""Browsing the market: ``datasov datasets`` and ``datasov show``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from contracts.chain import Chain
from contracts.models import Dataset
from contracts.terms import LicenseTerms
from market.health import DatasetHealth, datasets_health
from storage_node.errors import NodeError

from . import titles
from .context import (
    Network,
    command_runner,
    home_option,
    json_option,
    load_network,
    open_chain,
    rpc_option,
)
from .ui import emit_json, out_console, tokens

BATCH = 64  # datasets read at once by a listing


async def dataset_json(chain: Chain, dataset_id: int) -> tuple[dict[str, Any], DatasetHealth]:
    """One dataset as `datasets --json` lists it (without its title: see :mod:`.titles`)."""
    return (await datasets_json(chain, [dataset_id]))[0]


async def datasets_json(chain: Chain, ids: Sequence[int]) -> list[tuple[dict[str, Any], DatasetHealth]]:
    """Datasets as `datasets --json` lists them, in the order given: three reads per dataset and
    the health of a batch at once (:func:`market.health.datasets_health`), ``BATCH`` at a time."""
    out: list[tuple[dict[str, Any], DatasetHealth]] = []
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        facts = await asyncio.gather(
            *(asyncio.gather(chain.get_dataset(i), chain.get_terms(i), chain.consent_revoked_at(i)) for i in batch)
        )
        health = await datasets_health(chain, {d.dataset_id: (d.k, d.n) for d, _, _ in facts})
        out += [(_info(d, terms, revoked, health[d.dataset_id]), health[d.dataset_id]) for d, terms, revoked in facts]
    return out


def _info(d: Dataset, terms: LicenseTerms, consent_revoked_at: int, health: DatasetHealth) -> dict[str, Any]:
    return {
        "id": d.dataset_id,
        "owner": d.owner,
        "price": str(d.price),
        "price_tokens": tokens(d.price),
        "terms_version": d.terms_version,
        "size": d.plaintext_size,
        "k": d.k,
        "n": d.n,
        "manifest_hash": d.manifest_hash.hex(),
        "commitment_root": d.commitment_root.hex(),
        "terms": terms.to_json(),
        "consent_revoked_at": consent_revoked_at,
        "health": health.to_json(),
    }


def consent_forms(terms: LicenseTerms, *, chain_id: int, dataset: dict[str, Any]) -> dict[str, Any]:
    """The dataset's current terms in the forms a crawler-facing site publishes: the CAWG
    training-and-data-mining assertion, a TDMRep policy and IETF aipref Content-Usage categories."""
    base = f"urn:datasov:eip155:{chain_id}"
    return {
        "cawg": terms.to_cawg(),
        "tdmrep": terms.to_tdmrep_policy(
            uid=f"{base}:dataset:{dataset['id']}:terms:{dataset['terms_version']}",
            target=f"{base}:dataset:{dataset['id']}",
            assigner=f"{base}:account:{dataset['owner']}",
        ),
        "aipref": terms.to_aipref(),
    }


async def add_titles(chain: Chain, network: Network, home: Path, rows: list[dict[str, Any]]) -> None:
    """Set each row's ``title`` (None when no holder answered with the manifest)."""
    found = await titles.titles(
        chain, network.directory, home, {r["id"]: bytes.fromhex(r["manifest_hash"]) for r in rows}
    )
    for r in rows:
        r["title"] = found[r["id"]]


def _storage_cell(health: dict[str, Any]) -> str:
    """The storage column of `datasets`: servable with its healthy count, or why not."""
    if health["servable"]:
        return f"[green]servable[/] {health['healthy']}/{health['n']}"
    return f"[red]unservable[/]: {health['reason']}"


@click.command()
@home_option
@rpc_option
@json_option
@command_runner
async def datasets(home: Path, rpc: str | None, as_json: bool) -> None:
    """List the datasets on offer, with whether their storage can serve them.

    A dataset is servable when an active storage deal holds at least k healthy shares (accepted
    and not reported faulty on-chain); the `health` object in --json says why not otherwise.

    \b
    Example:
      datasov datasets --json | jq '.[] | select(.health.servable and .terms.ai_training != "not_allowed")'
    """
    network = load_network(home, rpc)
    async with open_chain(network, read_only=True) as chain:
        rows = [info for info, _ in await datasets_json(chain, range(1, await chain.dataset_count() + 1))]
        await add_titles(chain, network, home, rows)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "title", "size", "k/n", "price", "ai training", "consent", "storage")
    table.add_column("owner", overflow="fold", min_width=42)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["title"] or "[dim]?[/]",
            f"{r['size']:,}",
            f"{r['k']}/{r['n']}",
            r["price_tokens"],
            r["terms"]["ai_training"],
            "revoked" if r["consent_revoked_at"] else "stands",
            _storage_cell(r["health"]),
            r["owner"],
        )
    out_console.print(table)


@click.command()
@click.argument("dataset_id", type=int)
@home_option
@rpc_option
@json_option
@command_runner
async def show(dataset_id: int, home: Path, rpc: str | None, as_json: bool) -> None:
    """Show one dataset: terms, sizes, commitment, storage health, where its shares are and whether they answer.

    Health comes from the chain (deal state, shares accepted and not faulty); "answering" is what
    the holders' HTTP endpoints say, which is no proof of health: a faulty share may still answer.

    \b
    Example:
      datasov show 1
    """
    network = load_network(home, rpc)
    async with open_chain(network, read_only=True) as chain:
        info, health = await dataset_json(chain, dataset_id)
        info["consent_forms"] = consent_forms(
            await chain.get_terms(dataset_id), chain_id=chain.deployment.chain_id, dataset=info
        )
        await add_titles(chain, network, home, [info])
        from storage_node.client import NodeClient  # aiohttp: only for the commands that contact nodes

        async with NodeClient(retries=1, timeout=3.0) as client:

            async def holder(share: Any) -> dict[str, Any]:
                entry: dict[str, Any] = {
                    "index": share.index,
                    "provider": share.provider,
                    "accepted": share.accepted,
                    "faulty": share.faulty,
                    "healthy": share.healthy,
                }
                try:
                    url = await network.directory.url_of(share.provider)
                    await client.head(url, info["manifest_hash"], share.index)
                    entry.update(url=url, online=True)
                except (NodeError, Exception) as err:
                    entry.update(online=False, problem=str(err)[:120])
                return entry

            # every holder asked at once: a holder that does not answer costs one timeout, not one each
            shares = list(await asyncio.gather(*(holder(s) for s in (health.deal.shares if health.deal else ()))))
    if health.deal is not None:
        info["deal"] = health.deal.to_json()
    info["shares"] = shares
    answering = sum(1 for s in shares if s["online"])
    info["health"]["answering"] = answering
    info["health"]["healthy_answering"] = sum(1 for s in shares if s["online"] and s["healthy"])
    if as_json:
        emit_json(info)
        return
    h = info["health"]
    out_console.print(f"[bold]dataset {dataset_id}[/]: {info['title'] or '(title unknown: no holder answered)'}")
    out_console.print(f"owner {info['owner']}, offer version {info['terms_version']}")
    out_console.print(f"size {info['size']:,} bytes, {info['k']}-of-{info['n']}, price {info['price_tokens']}")
    out_console.print(f"manifest {info['manifest_hash']}\ncommitment {info['commitment_root']}")
    out_console.print("consent: " + ("[red]revoked[/]" if info["consent_revoked_at"] else "[green]stands[/]"))
    out_console.print("terms: " + ", ".join(f"{k}={v}" for k, v in info["terms"].items() if k != "terms_hash"))
    verdict = "[green]servable[/]" if h["servable"] else "[red]NOT SERVABLE[/]"
    out_console.print(f"storage: {verdict} ({h['reason']})")
    if health.deal is not None:
        d = health.deal
        out_console.print(
            f"deal {d.deal_id}: {d.state}, epochs {d.start_epoch}..{d.end_epoch - 1} (now {h['epoch']}); "
            f"shares healthy {d.healthy}/{len(d.shares)}, faulty {d.faulty}, not accepted {d.pending}"
        )
        out_console.print(
            f"holders answering: {answering}/{len(shares)}, healthy and answering: {h['healthy_answering']} "
            f"(need {info['k']})"
        )
