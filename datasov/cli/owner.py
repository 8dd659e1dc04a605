"""The owner's commands: publish, consent revoke, storage end."""

from __future__ import annotations

from pathlib import Path

import click

from erasure.pipeline import Layout
from market import publisher
from market.terms import TRAINING_ALLOWED, LicenseTerms, Permission
from storage_node.client import NodeClient

from .context import (
    command_runner,
    home_option,
    json_option,
    load_network,
    open_chain,
    open_keystore,
    parse_amount,
    passphrase_option,
    rpc_option,
)
from .ui import emit_json, err_console, out_console, stage_progress

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
