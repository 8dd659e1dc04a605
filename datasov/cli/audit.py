"""``datasov audit``: consent receipts, written and verified."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import click

from market import audit as audit_mod

from .context import (
    command_runner,
    home_option,
    json_option,
    load_network,
    open_chain,
    open_keystore,
    passphrase_option,
    rpc_option,
)
from .ui import emit_json, fail, out_console

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
        receipt = await audit_mod.build_receipt(chain, license_id, keystore.account, plaintext_sha256=digest)
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
