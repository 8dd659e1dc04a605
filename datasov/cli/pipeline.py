"""``datasov pipeline``: encode and decode datasets locally, without a network."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from erasure import decoding, envelope, localfs
from erasure import manifest as manifest_mod
from erasure import pipeline as pl
from erasure.codec import CODECS, available_codecs
from erasure.errors import ErasureError

from .ui import emit_json, fail, out_console, progress_bar


def sample_path() -> Path:
    """The sample dataset shipped with datasov."""
    return Path(str(resources.files("datasov") / "samples" / "tiny-corpus"))


def write_key_file(path: Path, key: bytes) -> None:
    """Write a data key readable by the owner only (0600); never overwrite an existing key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)


def read_key_file(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != envelope.KEY_SIZE:
        fail(f"{path} is not a data key ({len(key)} bytes, expected {envelope.KEY_SIZE})")
    return key


def layout_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--codec",
                type=click.Choice(CODECS),
                default=pl.DEFAULT_CODEC,
                show_default=True,
                help="Erasure code: zfec (portable, default) or isal (ISA-L, faster).",
            ),
            click.option(
                "-k",
                "--k",
                "k",
                type=int,
                default=pl.DEFAULT_K,
                show_default=True,
                help="Shares needed to rebuild the data.",
            ),
            click.option(
                "-n",
                "--n",
                "n",
                type=int,
                default=pl.DEFAULT_N,
                show_default=True,
                help="Shares written in all (one per storage node).",
            ),
            click.option(
                "--block-size",
                type=int,
                default=pl.DEFAULT_BLOCK_SIZE,
                show_default=True,
                help="Bytes per block (leaf size times a power of two).",
            ),
            click.option(
                "--leaf-size",
                type=int,
                default=pl.DEFAULT_LEAF_SIZE,
                show_default=True,
                help="Merkle leaf size in bytes (the unit of storage proofs).",
            ),
            click.option("--threads", type=int, default=None, help="Worker threads (default: all cores)."),
        ]
    ):
        f = option(f)
    return f


def _encode(src: Path, out: Path, layout: pl.Layout, key: bytes, threads: int | None, show: bool) -> pl.EncodeResult:
    layout.make_codec()  # refuse bad parameters before anything is written
    src_data = localfs.open_dataset(src)
    with (
        progress_bar(f"encoding {src_data.name}", src_data.size, enabled=show) as advance,
        localfs.share_writers(out, layout.n) as sinks,
    ):
        result = pl.encode(
            src_data.chunks,
            sinks,
            key=key,
            layout=layout,
            name=src_data.name,
            content=src_data.content,
            threads=threads,
            progress=advance,
            index=src_data.index,
        )
    localfs.write_roots(out, result.block_roots)
    localfs.write_atomic(out / localfs.MANIFEST_NAME, result.manifest.canonical_bytes())
    return result


def _decode(shares: Path, out: Path, key: bytes, threads: int | None, show: bool) -> tuple[Any, decoding.DecodeReport]:
    man = manifest_mod.parse((shares / localfs.MANIFEST_NAME).read_bytes())
    sources = localfs.sources(shares, man)
    try:
        with progress_bar(f"decoding {man.name or 'dataset'}", man.plaintext_size, enabled=show) as advance:
            decoder = decoding.Decoder(man, key, sources, threads=threads, progress=advance)
            localfs.write_dataset(man.content, iter(decoder), out, index=man.index)
    finally:
        for s in sources.values():
            s.close()
    return man, decoder.report


@click.group()
def pipeline() -> None:
    """Encrypt, erasure-code and commit datasets on this machine (no network, no chain)."""


@pipeline.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory for the shares and manifest.json (created).",
)
@click.option(
    "--key-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the new data key (0600). Default: OUT.key beside OUT.",
)
@layout_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def encode(
    path: Path,
    out: Path,
    key_file: Path | None,
    codec: str,
    k: int,
    n: int,
    block_size: int,
    leaf_size: int,
    threads: int | None,
    as_json: bool,
) -> None:
    """Encrypt PATH (a file, or a directory packed as a deterministic tar) into n shares.

    \b
    Example:
      datasov pipeline encode ./corpus -o ./corpus.shares -k 10 -n 30
    """
    key_file = key_file or out.with_name(out.name + ".key")
    if key_file.exists():
        fail(f"{key_file} already exists", hint="choose another --key-file; a data key is never overwritten")
    if out.exists() and any(out.iterdir()):
        fail(f"{out} is not empty", hint="pick a new output directory")
    key = envelope.new_data_key()
    try:
        layout = pl.Layout(codec=codec, k=k, n=n, block_size=block_size, leaf_size=leaf_size)
        started = time.perf_counter()
        result = _encode(path, out, layout, key, threads, not as_json)
    except ErasureError as err:
        fail(str(err))
    write_key_file(key_file, key)
    man = result.manifest
    summary = {
        "manifest": str(out / localfs.MANIFEST_NAME),
        "manifest_hash": man.hash().hex(),
        "commitment_root": man.commitment_root.hex(),
        "key_file": str(key_file),
        "plaintext_size": man.plaintext_size,
        "share_size": man.share_size,
        "codec": f"{man.codec} {man.k}-of-{man.n}",
        "seconds": round(time.perf_counter() - started, 3),
    }
    if as_json:
        emit_json(summary)
    else:
        _table("encoded", summary)


@pipeline.command()
@click.argument("shares", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output file, or directory if the dataset was a directory.",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The data key written by encode.",
)
@click.option("--threads", type=int, default=None, help="Worker threads (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def decode(shares: Path, out: Path, key_file: Path, threads: int | None, as_json: bool) -> None:
    """Verify and decode the shares in SHARES (any k of n suffice) into OUT.

    Every block is checked against the committed Merkle roots before it is used; corrupt or
    missing shares are skipped and reported.

    \b
    Example:
      datasov pipeline decode ./corpus.shares -o ./corpus.out --key-file ./corpus.shares.key
    """
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        fail(f"{out} already exists", hint="decode into a new path")
    try:
        man, report = _decode(shares, out, read_key_file(key_file), threads, not as_json)
    except (ErasureError, OSError) as err:
        fail(f"decode failed: {err}")
    summary = {
        "out": str(out),
        "plaintext_size": man.plaintext_size,
        "suspect_shares": report.suspect_shares,
        "blocks_used": report.blocks_used,
    }
    if as_json:
        emit_json(summary)
    else:
        _table("decoded", {**summary, "suspect_shares": report.suspect_shares or "none"})


@pipeline.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path), required=False)
@layout_options
@click.option("--seed", type=int, default=None, help="Seed for which shares are lost and corrupted.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def roundtrip(
    path: Path | None,
    codec: str,
    k: int,
    n: int,
    block_size: int,
    leaf_size: int,
    threads: int | None,
    seed: int | None,
    as_json: bool,
) -> None:
    """Encode PATH (default: the bundled sample), lose n-k-1 shares, corrupt one more, decode, compare.

    \b
    Example:
      datasov pipeline roundtrip --codec isal -k 10 -n 30
    """
    src = path or sample_path()
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="datasov-roundtrip-"))
    try:
        key = envelope.new_data_key()
        layout = pl.Layout(codec=codec, k=k, n=n, block_size=block_size, leaf_size=leaf_size)
        shares = work / "shares"
        result = _encode(src, shares, layout, key, threads, not as_json)
        lost = rng.sample(range(n), n - k - 1)
        for i in lost:
            localfs.share_path(shares, i).unlink()
        survivors = sorted(set(range(n)) - set(lost))
        corrupt = survivors[0]  # the decoder reads it first, so it must notice
        with localfs.share_path(shares, corrupt).open("r+b") as f:
            f.seek(rng.randrange(result.manifest.share_size))
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
        out = work / "out"
        _, report = _decode(shares, out, key, threads, not as_json)
        same = _same_tree(src, out)
    except ErasureError as err:
        fail(str(err))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        "source": str(src),
        "codec": f"{codec} {k}-of-{n}",
        "shares_lost": sorted(lost),
        "share_corrupted": corrupt,
        "suspect_shares": report.suspect_shares,
        "bytes": result.manifest.plaintext_size,
        "identical": same,
    }
    if as_json:
        emit_json(summary)
    else:
        _table("round trip", summary)
    if not same:
        fail("decoded data differs from the source")


@pipeline.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
def codecs(as_json: bool) -> None:
    """List the erasure codecs that load on this machine."""
    if as_json:
        emit_json({name: name in available_codecs() for name in CODECS})
        return
    for name in CODECS:
        state = "available" if name in available_codecs() else "not installed"
        click.echo(f"{name}\t{state}")


def _same_tree(a: Path, b: Path) -> bool:
    if a.is_file():
        return b.is_file() and a.read_bytes() == b.read_bytes()
    left = sorted(p.relative_to(a).as_posix() for p in a.rglob("*"))
    right = sorted(p.relative_to(b).as_posix() for p in b.rglob("*"))
    return left == right and all((a / rel).is_dir() or (a / rel).read_bytes() == (b / rel).read_bytes() for rel in left)


def _table(title: str, rows: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in rows.items():
        table.add_row(key, str(value))
    out_console.print(table)
