"""Terminal output shared by every command: progress bars, tables, JSON, errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

# Piped output (scripts, `| grep`, `| less`) is laid out 240 columns wide rather than rich's 80, so
# tables keep whole addresses and URLs instead of cutting them with an ellipsis; a terminal (or an
# explicit COLUMNS) keeps its own width.
PIPED_WIDTH = 240
err_console = Console(stderr=True)
out_console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


@contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool = True) -> Iterator[Any]:
    """A byte-progress bar on stderr; yields ``advance(nbytes)``. Silent when disabled or not a TTY."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _n: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


_json_errors = False


def json_errors(enabled: bool) -> None:
    """With ``--json``, :func:`fail` also prints the error as JSON on stdout (for scripts)."""
    global _json_errors
    _json_errors = enabled


def fail(message: str, *, hint: str | None = None, code: int = 1, name: str | None = None, **details: Any) -> NoReturn:
    """Print an error (and what to do about it) and exit with ``code``.

    Under ``--json`` the error is also printed on stdout as ``{"error": {"message", "code", "name",
    "hint", ...details}}``; ``name`` is the error's class (a contract refusal's Solidity name)."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    if hint:
        err_console.print(f"[dim]hint:[/] {hint}", soft_wrap=True, highlight=False)
    if _json_errors:
        emit_json({"error": {"message": message, "code": code, "name": name, "hint": hint, **details}})
    raise SystemExit(code)


@contextmanager
def stage_progress(*, enabled: bool = True) -> Iterator[Any]:
    """Progress bars for a multi-stage job; yields ``progress(stage, advance, total)``."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _stage, _n, _total: None
        return
    with Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, n: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.advance(tasks[stage], n)

        yield progress


def tokens(amount: int, decimals: int = 18) -> str:
    """1500000000000000000 -> '1.5'."""
    whole, frac = divmod(amount, 10**decimals)
    text = f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".")
    return text
