"""The marketplace commands: init, publish, datasets, show, license, fetch, consent, storage, audit, agent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click
from eth_account import Account
from rich.table import Table

from contracts.chain import Chain
from contracts.terms import TRAINING_ALLOWED, LicenseTerms, Permission, Purpose
from erasure.pipeline import Layout
from market import audit as audit_mod
from market import buyer, key_agent, publisher
from market.durability import estimate
from market.health import DatasetHealth, dataset_health
from market.keystore import Keystore
from market.repair import RepairAgent
from market.reporter import FaultReporter
from storage_node.client import NodeClient
from storage_node.errors import NodeError

from .context import (
    CONFIG,
    Network,
    command_runner,
    home_option,
    json_option,
    load_network,
    make_machine_secret,
    open_chain,
    open_keystore,
    passphrase,
    passphrase_option,
    rpc_option,
)
from .ui import emit_json, err_console, fail, out_console, stage_progress, tokens

TERMS_PRESETS: dict[str, LicenseTerms] = {
    "training": TRAINING_ALLOWED,
    "inference-only": LicenseTerms(ai_inference=Permission.ALLOWED, commercial_use=True),
    "research": LicenseTerms(
        ai_training=Permission.ALLOWED, ai_inference=Permission.ALLOWED, data_mining=Permission.ALLOWED
    ),
    "none": LicenseTerms(),
}


def parse_amount(text: str) -> int:
    """'1.5' tokens -> 1500000000000000000 base units."""
    try:
        value = Decimal(text)
    except InvalidOperation as err:
        raise click.BadParameter(f"{text!r} is not an amount like 10 or 0.25") from err
    if value < 0:
        raise click.BadParameter("amounts cannot be negative")
    return int(value * 10**18)


# ------------------------------------------------------------------------------ init ----


@click.command()
@home_option
@click.option(
    "--network",
    "network_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A devnet.json (from `datasov devnet up`) or any file in that format.",
)
@click.option("--dev-account", type=int, default=None, help="Use deterministic dev account N (local chains only).")
@click.option("--no-passphrase", is_flag=True, help="Encrypt the keystore with a random machine secret (0600).")
@passphrase_option
@click.option("--force", is_flag=True, help="Rewrite the network config of an existing home.")
@json_option
def init(
    home: Path,
    network_file: Path | None,
    dev_account: int | None,
    no_passphrase: bool,
    passphrase_file: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Create a home: an encrypted keystore with your account, and the network to use.

    \b
    Example (with `datasov devnet up --home ./net` running elsewhere):
      datasov init --home ./alice --network ./net/devnet.json --dev-account 1 --no-passphrase
    """
    from contracts.devchain import dev_account as dev

    home.mkdir(parents=True, exist_ok=True)
    created = False
    if not (home / "keystore.json").exists():
        secret = make_machine_secret(home) if no_passphrase else passphrase(home, passphrase_file, confirm=True)
        account = dev(dev_account) if dev_account is not None else Account.create()
        Keystore.create(home, secret, account=account)
        created = True
    elif dev_account is not None:
        fail(f"{home} already has a keystore", hint="use a new --home for another account")
    if network_file is not None:
        if (home / CONFIG).exists() and not force:
            fail(f"{home / CONFIG} exists", hint="add --force to replace it")
        network = Network.from_json(json.loads(network_file.read_text()))
        (home / CONFIG).write_text(json.dumps(network.to_json(), indent=2) + "\n")
    address = open_keystore(home, passphrase_file).account.address
    if as_json:
        emit_json({"home": str(home), "address": address, "created": created})
    else:
        out_console.print(f"{'created' if created else 'using'} {home}: account [bold]{address}[/]")


# --------------------------------------------------------------------------- publish ----


@click.command()
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("--title", default=None, help="Name recorded in the manifest (default: the file or folder name).")
@click.option("--price", default="0", show_default=True, help="License price in tokens.")
@click.option(
    "--terms",
    type=click.Choice(sorted(TERMS_PRESETS)),
    default="training",
    show_default=True,
    help="License terms preset (what licensees may use the data for).",
)
@click.option("--terms-text", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="Full terms text.")
@click.option("--terms-uri", default="", help="Where the full terms text is published.")
@click.option("-k", "k", type=int, default=4, show_default=True, help="Shares needed to rebuild.")
@click.option("-n", "n", type=int, default=10, show_default=True, help="Shares stored (on n distinct nodes).")
@click.option("--codec", default="zfec", show_default=True, help="Erasure codec (zfec or isal).")
@click.option("--epochs", type=int, default=1000, show_default=True, help="Storage deal length in epochs.")
@click.option("--fee", default="0.001", show_default=True, help="Storage fee per share per epoch, in tokens.")
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def publish(
    path: Path,
    title: str | None,
    price: str,
    terms: str,
    terms_text: Path | None,
    terms_uri: str,
    k: int,
    n: int,
    codec: str,
    epochs: int,
    fee: str,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Encrypt, erasure-code and store a file or folder on n nodes, and offer licenses for it.

    The data key stays in your keystore; the owner's key agent (`datasov agent run`) releases it
    to each buyer while consent stands.

    \b
    Example:
      datasov publish ./corpus --price 5 --terms training -k 4 -n 10
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    chosen = TERMS_PRESETS[terms]
    if terms_text is not None:
        chosen = chosen.with_text(terms_text.read_text(), terms_uri)
    options = publisher.PublishOptions(
        layout=Layout(codec=codec, k=k, n=n),
        price=parse_amount(price),
        terms=chosen,
        epochs=epochs,
        fee_per_share_epoch=parse_amount(fee),
    )
    async with open_chain(network) as chain, NodeClient() as client:
        with stage_progress(enabled=not as_json) as progress:
            pub = await publisher.publish(
                path,
                chain=chain,
                keystore=keystore,
                directory=network.directory,
                client=client,
                staging=home / "staging",
                options=options,
                progress=progress,
                name=title,
            )
    result = {
        "dataset_id": pub.dataset_id,
        "deal_id": pub.deal_id,
        "manifest_hash": pub.manifest_hash.hex(),
        "commitment_root": pub.manifest.commitment_root.hex(),
        "size": pub.manifest.plaintext_size,
        "k": pub.manifest.k,
        "n": pub.manifest.n,
        "nodes": {i: node.url for i, node in sorted(pub.placements.items())},
        "replaced": pub.replaced,
        "seconds": {k: round(v, 3) for k, v in pub.timings.items()},
    }
    if as_json:
        emit_json(result)
        return
    out_console.print(
        f"published dataset [bold]{pub.dataset_id}[/] ({pub.manifest.plaintext_size} bytes, "
        f"{pub.manifest.k}-of-{pub.manifest.n} on {len(pub.placements)} nodes), storage deal {pub.deal_id}"
    )
    out_console.print(f"commitment root {pub.manifest.commitment_root.hex()}")
    err_console.print("[dim]keep `datasov agent run` going so buyers receive the key[/]")


# -------------------------------------------------------------------------- browsing ----


async def _dataset_json(chain: Chain, dataset_id: int) -> tuple[dict[str, Any], DatasetHealth]:
    d = await chain.get_dataset(dataset_id)
    terms = await chain.get_terms(dataset_id)
    health = await dataset_health(chain, dataset_id, k=d.k, n=d.n)
    info = {
        "id": dataset_id,
        "owner": d.owner,
        "price": str(d.price),
        "price_tokens": tokens(d.price),
        "size": d.plaintext_size,
        "k": d.k,
        "n": d.n,
        "manifest_hash": d.manifest_hash.hex(),
        "commitment_root": d.commitment_root.hex(),
        "terms": terms.to_json(),
        "consent_revoked_at": await chain.consent_revoked_at(dataset_id),
        "health": health.to_json(),
    }
    return info, health


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
    async with open_chain(load_network(home, rpc)) as chain:
        rows = [(await _dataset_json(chain, i))[0] for i in range(1, await chain.dataset_count() + 1)]
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "size", "k/n", "price", "ai training", "consent", "storage", "owner")
    for r in rows:
        table.add_row(
            str(r["id"]),
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
    async with open_chain(network) as chain:
        info, health = await _dataset_json(chain, dataset_id)
        shares: list[dict[str, Any]] = []
        async with NodeClient(retries=1, timeout=3.0) as client:
            for share in health.deal.shares if health.deal else ():
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
                shares.append(entry)
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
    out_console.print(f"[bold]dataset {dataset_id}[/]  owner {info['owner']}")
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


# ------------------------------------------------------------------ consent, storage ----


@click.group()
def consent() -> None:
    """Revoke consent for a dataset you own."""


@consent.command("revoke")
@click.argument("dataset_id", type=int)
@home_option
@rpc_option
@passphrase_option
@command_runner
async def consent_revoke(dataset_id: int, home: Path, rpc: str | None, passphrase_file: Path | None) -> None:
    """Revoke consent: no new licenses, no key release; revocable licenses end now.

    \b
    Example:
      datasov consent revoke 1
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        await chain.revoke_consent(keystore.account, dataset_id)
    out_console.print(f"consent for dataset {dataset_id} revoked")


@click.group()
def storage() -> None:
    """Manage the storage of datasets you own."""


@storage.command("end")
@click.argument("dataset_id", type=int)
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def storage_end(
    dataset_id: int, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """End a dataset's storage deal and order its nodes to delete the shares now.

    \b
    Example:
      datasov storage end 1
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        result = await publisher.end_storage(chain, keystore.account, network.directory, dataset_id)
    if as_json:
        emit_json(result)
    else:
        out_console.print(
            f"deal(s) {result['deals']} terminated; {len(result['deleted'])} share(s) deleted now, "
            f"{len(result['pending'])} left to the nodes' garbage collection"
        )


# ----------------------------------------------------------------------------- audit ----


class _DefaultGroup(click.Group):
    """``datasov audit LICENSE`` runs the default subcommand; ``datasov audit verify FILE`` another."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["receipt", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup)
def audit() -> None:
    """Consent receipts: what you licensed, for which bytes, when; checkable against the chain alone.

    \b
    Example:
      datasov audit 1 -o receipt.json --data ./corpus.tar   (same as: datasov audit receipt 1 ...)
      datasov audit verify receipt.json
    """


@audit.command("receipt")
@click.argument("license_id", type=int)
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option(
    "--data",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="The fetched file: its SHA-256 goes into the receipt (signed by you).",
)
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def audit_receipt(
    license_id: int,
    out: Path,
    data: Path | None,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Write the signed consent receipt of a license you hold.

    \b
    Example:
      datasov audit 1 -o receipt.json && datasov audit verify receipt.json
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    digest = await asyncio.to_thread(_sha256_file, data) if data is not None and data.is_file() else None
    async with open_chain(network) as chain:
        receipt = await audit_mod.build_receipt(chain, license_id, keystore.account, content_sha256=digest)
    out.write_text(json.dumps(receipt, indent=2, sort_keys=True) + "\n")
    if as_json:
        emit_json({"receipt": str(out), "license_id": license_id})
    else:
        out_console.print(f"consent receipt for license {license_id} written to {out}")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@audit.command("verify")
@click.argument("receipt_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@home_option
@rpc_option
@json_option
@command_runner
async def audit_verify(receipt_file: Path, home: Path, rpc: str | None, as_json: bool) -> None:
    """Check a consent receipt against the chain alone (exit 0 only if every claim holds).

    \b
    Example:
      datasov audit verify receipt.json --json
    """
    try:
        receipt = json.loads(receipt_file.read_text())
    except ValueError as err:
        fail(f"{receipt_file} is not JSON: {err}")
    async with open_chain(load_network(home, rpc)) as chain:
        result = await audit_mod.verify_receipt(chain, receipt)
    if as_json:
        emit_json(result.to_json())
    else:
        verdict = "[green]valid[/]" if result.ok else "[red]INVALID[/]"
        out_console.print(f"receipt {verdict}; consent {'stands' if result.consent_stands else 'no longer stands'}")
        for p in result.problems:
            out_console.print(f"  problem: {p}")
        for note in result.notes:
            out_console.print(f"  note: {note}")
    if not result.ok:
        raise SystemExit(6)


# ----------------------------------------------------------------------------- agent ----


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
@home_option
@rpc_option
@passphrase_option
@json_option
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
        agent = key_agent.KeyAgent(chain, keystore, home=home, poll=poll)
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
            if once:
                decisions = await agent.tick()
                missed = await reporter.tick()
                repairs = [] if no_repair else await repairer.tick()
                result = {
                    "deliveries": [_decision(d) for d in decisions],
                    "missed_proofs_reported": [
                        {"deal_id": m.deal_id, "share": m.share_index, "epoch": m.epoch, "provider": m.provider}
                        for m in missed
                    ],
                    "repaired": {r.deal_id: r.repaired for r in repairs if r.repaired},
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
            workers = [agent, reporter] + ([] if no_repair else [repairer])
            await asyncio.gather(*(worker.run() for worker in workers))


def _decision(d: key_agent.Decision) -> dict[str, Any]:
    return {
        "license_id": d.license_id,
        "dataset_id": d.dataset_id,
        "buyer": d.buyer,
        "outcome": d.outcome,
        "reason": d.reason,
    }


# ------------------------------------------------------------------------ durability ----


@click.command()
@click.option("-k", "k", type=int, default=10, show_default=True, help="Shares needed to rebuild.")
@click.option("-n", "n", type=int, default=30, show_default=True, help="Shares stored.")
@click.option("--repair-at", type=int, default=None, help="Repair when this many shares are left (default k + 2).")
@click.option("--node-failure-rate", type=float, default=0.1, show_default=True, help="Failures per node per year.")
@click.option("--repair-hours", type=float, default=24.0, show_default=True, help="Time a repair takes.")
@json_option
def durability(
    k: int, n: int, repair_at: int | None, node_failure_rate: float, repair_hours: float, as_json: bool
) -> None:
    """Estimate the yearly chance of losing a dataset, and the storage expansion factor.

    Model (Storj whitepaper, section 3.4): nodes fail independently (Poisson); repair starts when
    REPAIR_AT shares are left and takes REPAIR_HOURS; data is lost if more than REPAIR_AT - k of
    those fail within one repair. Correlated failures are not modelled (publishing never puts two
    shares on one operator). See market/durability.py.

    \b
    Example:
      datasov durability -k 10 -n 30 --repair-at 12 --node-failure-rate 0.1
    """
    try:
        result = estimate(
            k=k,
            n=n,
            repair_at=repair_at if repair_at is not None else k + 2,
            node_failure_rate=node_failure_rate,
            repair_hours=repair_hours,
        )
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
    if as_json:
        emit_json(result.to_json())
        return
    out_console.print(
        f"{k}-of-{n}, repair at {result.repair_at}, {node_failure_rate:g} failures/node/year, "
        f"repairs take {repair_hours:g} h"
    )
    out_console.print(f"expansion factor      {result.expansion:.2f}x")
    out_console.print(f"repairs per year      {result.repairs_per_year:.3f}")
    out_console.print(f"loss per repair       {result.loss_per_repair:.3e}")
    out_console.print(f"yearly loss           {result.yearly_loss:.3e}  ({result.nines:.1f} nines of durability)")


COMMANDS = [init, publish, datasets, show, license, fetch, consent, storage, audit, agent, durability]
