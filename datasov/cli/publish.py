"""Offering a dataset: ``datasov publish`` and ``datasov offer update``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from contracts.terms import TRAINING_ALLOWED, LicenseTerms, Permission
from erasure.errors import ErasureError
from erasure.pipeline import Layout, preferred_codec

from . import titles
from .context import (
    TOKENS,
    command_runner,
    home_option,
    json_option,
    load_network,
    open_chain,
    open_keystore,
    passphrase,
    passphrase_option,
    rpc_option,
)
from .guardian import DEFAULT_FEE_BPS, share_with_guardians
from .ui import emit_json, err_console, out_console, stage_progress, tokens

if TYPE_CHECKING:
    from market.keystore import Keystore

TERMS_PRESETS: dict[str, LicenseTerms] = {
    "training": TRAINING_ALLOWED,
    "inference-only": LicenseTerms(ai_inference=Permission.ALLOWED, commercial_use=True),
    "research": LicenseTerms(
        ai_training=Permission.ALLOWED, ai_inference=Permission.ALLOWED, data_mining=Permission.ALLOWED
    ),
    "none": LicenseTerms(),
}


# --------------------------------------------------------------------------- publish ----


@click.command()
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("--title", default=None, help="Name recorded in the manifest (default: the file or folder name).")
@click.option("--price", type=TOKENS, default="0", show_default=True, help="License price in tokens.")
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
@click.option(
    "--codec",
    type=click.Choice(["auto", "isal", "zfec"]),
    default="auto",
    show_default=True,
    help="Erasure codec: auto is ISA-L where installed, else zfec (shares of either stay readable).",
)
@click.option("--epochs", type=int, default=1000, show_default=True, help="Storage deal length in epochs.")
@click.option(
    "--fee", type=TOKENS, default="0.001", show_default=True, help="Storage fee per share per epoch, in tokens."
)
@click.option(
    "--guardians",
    "guardian_count",
    type=int,
    default=0,
    show_default=True,
    help="Also split the key among this many key guardians (staked operators), so buyers get it while you are offline.",
)
@click.option(
    "--threshold", type=int, default=None, help="Guardian pieces needed to rebuild the key (t of --guardians)."
)
@click.option(
    "--guardian-fee-bps", type=int, default=DEFAULT_FEE_BPS, show_default=True, help="Fee per delivered piece."
)
@click.option(
    "--max-fee",
    type=TOKENS,
    default=None,
    help="Use only nodes asking at most this many tokens per GiB per epoch (default: any ask); the deal pays "
    "at least what each chosen node asks for its share.",
)
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def publish(
    path: Path,
    title: str | None,
    price: int,
    terms: str,
    terms_text: Path | None,
    terms_uri: str,
    k: int,
    n: int,
    codec: str,
    epochs: int,
    fee: int,
    guardian_count: int,
    threshold: int | None,
    guardian_fee_bps: int,
    max_fee: int | None,
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
      datasov publish ./my-corpus --price 5 --terms training -k 4 -n 10 --max-fee 0.01
      datasov publish ./my-corpus --price 5 --guardians 5 --threshold 3

    Shares go to n distinct operators on n distinct /24 (IPv4) or /48 (IPv6) networks, among the
    announced nodes that answer now, have room and ask at most --max-fee; if too few qualify,
    nothing is published and the error says why each other node was left out.
    """
    if guardian_count and not (threshold and 1 <= threshold <= guardian_count):
        raise click.BadParameter("give --threshold t with 1 <= t <= --guardians", param_hint="--threshold")
    layout = Layout(codec=preferred_codec(k, n) if codec == "auto" else codec, k=k, n=n)
    try:
        layout.make_codec()
    except ErasureError as err:
        raise click.BadParameter(str(err), param_hint="-k / -n / --codec") from err
    if epochs < 1:
        raise click.BadParameter("a storage deal lasts at least 1 epoch", param_hint="--epochs")
    started = _since_process_start()
    # imported here, not with the module: `datasov publish --help` needs neither (web3, aiohttp)
    from market import publisher
    from storage_node.client import NodeClient

    network = load_network(home, rpc)
    secret = passphrase(home, passphrase_file)  # a prompt, if any, before anything runs beside it
    options = publisher.PublishOptions(
        layout=layout,
        price=price,
        terms=_terms(TERMS_PRESETS[terms], terms_text, terms_uri),
        epochs=epochs,
        fee_per_share_epoch=fee,
        placement=publisher.PlacementPolicy(max_ask=max_fee),
    )
    # the keystore's Argon2id runs in a thread (it releases the GIL) while the chain and directory open
    t = time.perf_counter()
    unlocking = asyncio.ensure_future(asyncio.to_thread(_unlock, home, secret))
    try:
        async with open_chain(network) as chain, NodeClient() as client:
            connect_s = time.perf_counter() - t
            keystore, unlock_s = await unlocking
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
            shared = None
            if guardian_count:
                shared = await share_with_guardians(
                    chain, keystore, network, pub.dataset_id, guardian_count, threshold or 1, fee_bps=guardian_fee_bps
                )
    finally:
        if not unlocking.done():  # the chain failed to open: let the thread finish, report the first error
            with contextlib.suppress(Exception):
                await unlocking
    timings = {"startup": started, "connect": connect_s, "unlock": unlock_s, **pub.timings}
    titles.remember(home, pub.manifest_hash, pub.manifest.name)
    result = {
        "dataset_id": pub.dataset_id,
        "title": pub.manifest.name,
        "deal_id": pub.deal_id,
        "manifest_hash": pub.manifest_hash.hex(),
        "commitment_root": pub.manifest.commitment_root.hex(),
        "size": pub.manifest.plaintext_size,
        "k": pub.manifest.k,
        "n": pub.manifest.n,
        "nodes": {i: node.url for i, node in sorted(pub.placements.items())},
        "replaced": pub.replaced,
        "seconds": {k: round(v, 3) for k, v in timings.items() if v is not None},
        "guardians": shared,
    }
    if as_json:
        emit_json(result)
        return
    out_console.print(
        f"published dataset [bold]{pub.dataset_id}[/] ({pub.manifest.plaintext_size} bytes, "
        f"{pub.manifest.k}-of-{pub.manifest.n} on {len(pub.placements)} nodes), storage deal {pub.deal_id}"
    )
    out_console.print(f"commitment root {pub.manifest.commitment_root.hex()}")
    if shared:
        out_console.print(
            f"key shared {threshold}-of-{guardian_count} among guardians " + ", ".join(shared["guardians"])
        )
        err_console.print("[dim]buyers get the key from the guardians, or from `datasov agent run`[/]")
    else:
        err_console.print("[dim]keep `datasov agent run` going so buyers receive the key[/]")


def _unlock(home: Path, secret: bytes) -> tuple[Keystore, float]:
    from market.keystore import Keystore

    t = time.perf_counter()
    return Keystore.open(home, secret), time.perf_counter() - t


def _since_process_start() -> float | None:
    """Seconds since this process started (interpreter start-up and imports), where /proc says."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _terms(chosen: LicenseTerms, terms_text: Path | None, terms_uri: str) -> LicenseTerms:
    return chosen.with_text(terms_text.read_text(), terms_uri) if terms_text is not None else chosen


# ------------------------------------------------------------------------ offer ----


@click.group()
def offer() -> None:
    """Change what a dataset you own is offered for."""


@offer.command("update")
@click.argument("dataset_id", type=int)
@click.option("--price", type=TOKENS, default=None, help="New license price in tokens (default: unchanged).")
@click.option(
    "--terms",
    type=click.Choice(sorted(TERMS_PRESETS)),
    default=None,
    help="New license terms preset (default: unchanged).",
)
@click.option("--terms-text", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="Full terms text.")
@click.option("--terms-uri", default="", help="Where the full terms text is published.")
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def offer_update(
    dataset_id: int,
    price: int | None,
    terms: str | None,
    terms_text: Path | None,
    terms_uri: str,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Change the price and/or terms of a dataset you own; the offer's version goes up by one.

    Licenses already bought keep the terms they were bought under; a purchase made against the
    old version reverts (TermsVersionMismatch), so no buyer pays for terms they did not see.

    \b
    Example:
      datasov offer update 1 --price 7.5 --terms research
    """
    if price is None and terms is None and terms_text is None:
        raise click.UsageError("nothing to change: give --price, --terms and/or --terms-text")
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        before = await chain.get_dataset(dataset_id)
        current = await chain.get_terms(dataset_id)
        new_terms = _terms(TERMS_PRESETS[terms] if terms is not None else current, terms_text, terms_uri)
        new_price = before.price if price is None else price
        await chain.update_offer(
            keystore.account, dataset_id, price=new_price, terms=new_terms, payment_token=before.payment_token
        )
        after = await chain.get_dataset(dataset_id)
        terms_now = (await chain.get_terms(dataset_id)).to_json()
    result: dict[str, Any] = {
        "dataset_id": dataset_id,
        "price": str(after.price),
        "price_tokens": tokens(after.price),
        "terms_version": after.terms_version,
        "terms": terms_now,
    }
    if as_json:
        emit_json(result)
    else:
        out_console.print(
            f"dataset {dataset_id}: offer version {after.terms_version}, price {tokens(after.price)} tokens "
            f"(was {tokens(before.price)}), terms: "
            + ", ".join(f"{k}={v}" for k, v in result["terms"].items() if k != "terms_hash")
        )
