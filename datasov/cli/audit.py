"""``datasov audit``: consent receipts, written and verified."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

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
      datasov audit export receipt.json --format croissant -o mix.croissant.json
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
@click.option(
    "--files",
    "files_json",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help='The files you read: a JSON list of {"path", "size", "sha256"} (from the file index); signed by you.',
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
    files_json: Path | None,
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
    files = _files_read(files_json) if files_json is not None else None
    async with open_chain(network) as chain:
        try:
            receipt = await audit_mod.build_receipt(
                chain, license_id, keystore.account, plaintext_sha256=digest, files=files
            )
        except audit_mod.ReceiptError as err:
            fail(str(err))
    out.write_text(json.dumps(receipt, indent=2, sort_keys=True) + "\n")
    if as_json:
        emit_json({"receipt": str(out), "license_id": license_id})
    else:
        out_console.print(f"consent receipt for license {license_id} written to {out}")


def _files_read(path: Path) -> list[audit_mod.FileRead]:
    listed = _read_json(path)
    try:
        return [audit_mod.FileRead(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in listed]
    except (TypeError, KeyError, ValueError) as err:
        fail(f'{path}: expected a JSON list of {{"path", "size", "sha256"}}: {err!r}')


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
    """Check a consent receipt, or an SPDX / Croissant document exported from receipts, against the
    chain alone (exit 0 only if every claim holds; 6 if any does not, naming the field).

    \b
    Example:
      datasov audit verify receipt.json --json
      datasov audit verify training-mix.spdx.json
    """
    doc = _read_json(receipt_file)
    async with open_chain(load_network(home, rpc)) as chain:
        try:
            if isinstance(doc, dict) and doc.get("format") == audit_mod.FORMAT:
                result = await audit_mod.verify_receipt(chain, doc)
            else:
                result = await audit_mod.verify_document(chain, doc)
        except audit_mod.ReceiptError as err:
            fail(f"{receipt_file}: {err}", code=6, name="ReceiptError")
    what = "receipt" if isinstance(doc, dict) and doc.get("format") == audit_mod.FORMAT else audit_mod.kind_of(doc)
    if as_json:
        emit_json({"document": what, **result.to_json()})
    else:
        verdict = "[green]valid[/]" if result.ok else "[red]INVALID[/]"
        out_console.print(f"{what} {verdict}; consent {'stands' if result.consent_stands else 'no longer stands'}")
        for p in result.problems:
            out_console.print(f"  problem: {p}", highlight=False)
        for note in result.notes:
            out_console.print(f"  note: {note}", highlight=False)
    if not result.ok:
        raise SystemExit(6)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        fail(f"{path} is not JSON: {err}")


@audit.command("export")
@click.argument("receipt_files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--format", "fmt", type=click.Choice(audit_mod.FORMATS), required=True, help="Document to write.")
@click.option("--model", default=None, help="The model trained on the mix (SPDX: an ai_AIPackage trainedOn each).")
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@home_option
@rpc_option
@json_option
@command_runner
async def audit_export(
    receipt_files: tuple[Path, ...], fmt: str, model: str | None, out: Path, home: Path, rpc: str | None, as_json: bool
) -> None:
    """Write one document for a whole training mix from v2 receipts, each verified against the chain
    first: SPDX 3.0.1 JSON-LD, Croissant 1.1 JSON-LD (RAI, ODRL usageInfo), or the EU AI Act
    summary's licensed-data section (JSON to -o, Markdown beside it as .md).

    \b
    Example:
      datasov audit export r1.json r2.json --format spdx3 --model my-llm -o mix.spdx.json
      datasov audit verify mix.spdx.json
    """
    receipts = [_read_json(path) for path in receipt_files]
    async with open_chain(load_network(home, rpc)) as chain:
        for path, receipt in zip(receipt_files, receipts, strict=True):
            try:
                check = await audit_mod.verify_receipt(chain, receipt)
            except audit_mod.ReceiptError as err:
                fail(f"{path}: {err}", code=6, name="ReceiptError")
            if not check.ok:
                fail(f"{path} does not verify: {'; '.join(check.problems)}", code=6, name="ReceiptError")
    try:
        doc = audit_mod.export(receipts, fmt, model=model, created=int(time.time()))
    except audit_mod.ReceiptError as err:
        fail(str(err), code=6, name="ReceiptError")
    out.write_text(json.dumps(doc, indent=2) + "\n")
    written = [str(out)]
    if fmt == "eu-ai-act":
        md = out.with_suffix(".md") if out.suffix != ".md" else out.with_suffix(".md.md")
        md.write_text(audit_mod.summary_markdown(doc))
        written.append(str(md))
    if as_json:
        emit_json({"format": fmt, "written": written, "receipts": len(receipts)})
    else:
        out_console.print(f"{fmt} document for {len(receipts)} receipt(s) written to {', '.join(written)}")
