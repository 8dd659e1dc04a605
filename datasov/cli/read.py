"""The lab's reading commands, like ``tahoe ls`` / ``tahoe get``: ls and cat straight from the network."""

from __future__ import annotations

import base64
import contextlib
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import click

from erasure.folderpack import Entry
from market.reader import DatasetReader, ReaderError
from storage_node.client import NodeClient

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

_RANGE = re.compile(r"^(\d*)-(\d*)$")
CHUNK = 1 << 20


def parse_range(text: str) -> tuple[int | None, int | None]:
    """``A-B`` (inclusive, as HTTP Range), ``A-`` (to the end) or ``-N`` (the last N bytes) as
    ``(A, B)``, ``(A, None)`` or ``(None, N)``; a usage error (exit 2) otherwise."""
    match = _RANGE.fullmatch(text.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise click.BadParameter(f"{text!r}: give A-B (inclusive byte offsets), A- or -N", param_hint="--range")
    first = int(match.group(1)) if match.group(1) else None
    last = int(match.group(2)) if match.group(2) else None
    if first is not None and last is not None and last < first:
        raise click.BadParameter(f"{text!r}: the end is before the start", param_hint="--range")
    return first, last


def clip(spec: tuple[int | None, int | None], size: int) -> tuple[int, int] | None:
    """The half-open span ``[start, stop)`` of a file of ``size`` bytes, or None if it starts past the end."""
    first, last = spec
    if first is None:
        return max(0, size - (last or 0)), size
    if first >= size and size > 0:
        return None
    stop = size if last is None else min(last + 1, size)
    return first, max(first, stop)


@contextlib.asynccontextmanager
async def open_reader(
    home: Path, rpc: str | None, passphrase_file: Path | None, license_id: int
) -> AsyncIterator[DatasetReader]:
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain, NodeClient() as client:
        reader = await DatasetReader.open(chain, keystore, network.directory, client, license_id, prefetch=2)
        try:
            yield reader
        finally:
            await reader.aclose()


@click.command("ls")
@click.argument("license_id", type=int)
@click.argument("path", default="")
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def ls(
    license_id: int, path: str, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """List the files of a licensed dataset (or of PATH inside it), read from the network.

    Only the dataset's encrypted file index is fetched (the segments holding it), checked and
    decrypted with your license's key; the license must be valid on-chain.

    \b
    Example:
      datasov ls 1 images/ --json | jq '.[] | select(.type == "file") | .size'
    """
    missing = None
    async with open_reader(home, rpc, passphrase_file, license_id) as reader:
        try:
            entry = reader.stat(path) if path.strip("/") else None
            entries = [entry] if entry is not None and entry.type == "file" else reader.listdir(path)
        except ReaderError as err:
            missing, entries = str(err), []
        rows = [
            {
                "path": e.path,
                "type": "directory" if e.type == "dir" else e.type,
                "size": e.size if e.type == "file" else None,
                "sha256": e.sha256.hex() if e.type == "file" and e.sha256 else None,
                "target": e.target or None,
            }
            for e in entries
        ]
    if missing is not None:
        fail(missing, name="NotFound")
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        kind = {"file": "-", "directory": "d", "link": "l"}[str(row["type"])]
        size = "" if row["size"] is None else f"{row['size']:,}"
        name = f"{row['path']}/" if row["type"] == "directory" else str(row["path"])
        name += f" -> {row['target']}" if row["target"] else ""
        out_console.print(f"{kind} {size:>15} {name}", highlight=False, markup=False)


@click.command("cat")
@click.argument("license_id", type=int)
@click.argument("path")
@click.option("--range", "byte_range", default=None, help="Only bytes A-B (inclusive, as HTTP Range), A- or -N.")
@home_option
@rpc_option
@passphrase_option
@json_option
@command_runner
async def cat(
    license_id: int,
    path: str,
    byte_range: str | None,
    home: Path,
    rpc: str | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Write a file of a licensed dataset (or a byte range of it) to standard output.

    Fetches only the segments that cover the bytes asked for, from any k holders, every block
    checked against the on-chain commitment. --json prints {path, start, end, size, base64}.

    \b
    Example:
      datasov cat 1 labels.csv --range 0-1023 | head
    """
    spec = (0, None) if byte_range is None else parse_range(byte_range)
    problem: tuple[str, str] | None = None  # failed after the reader is closed, not inside it
    async with open_reader(home, rpc, passphrase_file, license_id) as reader:
        try:
            entry = reader.file_entry(path)
        except ReaderError as err:
            problem = (str(err), "NotFound")
        else:
            span = clip(spec, entry.size)
            if span is None:
                problem = (
                    f"range {byte_range} starts past the end of the file ({entry.size} bytes)",
                    "RangeNotSatisfiable",
                )
            else:
                await _write(reader, entry, *span, as_json=as_json)
    if problem is not None:
        fail(problem[0], name=problem[1])


async def _write(reader: DatasetReader, entry: Entry, start: int, stop: int, *, as_json: bool) -> None:
    if as_json:
        data = await reader.read_file(entry.path, start, stop - start)
        emit_json(
            {
                "path": entry.path,
                "start": start,
                "end": stop - 1,
                "size": len(data),
                "base64": base64.b64encode(data).decode(),
            }
        )
        return
    out = sys.stdout.buffer
    offset = start
    while offset < stop:
        chunk = await reader.read_file(entry.path, offset, min(CHUNK, stop - offset))
        out.write(chunk)
        offset += len(chunk)
    out.flush()
