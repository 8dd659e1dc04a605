"""`datasov ARGS` for tests, two ways: in this process through click's `CliRunner` (:func:`datasov`),
or as a new interpreter (:func:`datasov_process`) where the test is about the process boundary.

Both return a :class:`subprocess.CompletedProcess` with ``returncode``, ``stdout`` and ``stderr``, so a
test reads the same either way. In this process a command costs what it does, not the ~1-3 CPU-seconds
of imports a new interpreter pays (web3, eth_account, libp2p...): the CLI tests run a score of commands
each (docs/test-suite.md). The runner gives each command what a fresh process has: no terminal (stdin
empty, not a TTY), no ``DATASOV_PASSPHRASE``, ``COLUMNS=200``, and the module state a command sets
(``--json`` errors, :func:`datasov.cli.ui.json_errors`) reset first. An exception a command did not turn
into an exit code is exit 1 with its traceback on stderr, as Python prints it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from click.testing import CliRunner

__all__ = ["as_json", "datasov", "datasov_process", "wait_servable"]

ENV = {"COLUMNS": "200", "DATASOV_PASSPHRASE": None, "DATASOV_BACKUP_PASSPHRASE": None}


def _full(args: tuple[str, ...], home: Path | None) -> list[str]:
    return [*args, *(["--home", str(home)] if home else [])]


def _checked(
    args: tuple[str, ...], proc: subprocess.CompletedProcess[str], check: bool
) -> subprocess.CompletedProcess[str]:
    if check and proc.returncode != 0:
        raise AssertionError(f"{args}: exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


def datasov(*args: str, home: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``datasov ARGS [--home HOME]`` in this process; ``check``: a non-zero exit fails the test."""
    from datasov.cli import cli, ui

    ui.json_errors(False)  # a fresh process starts without it; the previous command may have set it
    with _process_state(ui.out_console):
        result = CliRunner(env=ENV).invoke(cli, _full(args, home), prog_name="datasov", catch_exceptions=True)
    stderr = result.stderr
    code = result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        info = result.exc_info
        stderr += "".join(traceback.format_exception(*info)) if info else repr(result.exception)
        code = 1
    proc = subprocess.CompletedProcess(_full(args, home), code, result.stdout, stderr)
    return _checked(args, proc, check)


@contextlib.contextmanager
def _process_state(console: Any) -> Iterator[None]:
    """What a command may change for its own process, put back after it: the logging set-up (a
    command's ``logging.basicConfig`` or a level it sets, e.g. the demo quieting ``datasov``, would
    hide later tests' log records from caplog) and the output console's width (``COLUMNS=200``: the
    console took its width when it was created, in the test process)."""
    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    saved = [(lg, lg.level, lg.propagate, lg.disabled, list(lg.handlers)) for lg in loggers]
    width = console.width
    console.width = 200
    try:
        yield
    finally:
        console.width = width
        for lg, level, propagate, disabled, handlers in saved:
            lg.setLevel(level)
            lg.propagate, lg.disabled, lg.handlers[:] = propagate, disabled, handlers
        before = {id(lg) for lg, *_ in saved}
        for lg in list(logging.Logger.manager.loggerDict.values()):  # loggers the command created
            if isinstance(lg, logging.Logger) and id(lg) not in before:
                lg.setLevel(logging.NOTSET)


def wait_servable(dataset: str, home: Path, timeout: float = 120.0) -> None:
    """Until the chain says dataset ``dataset`` can be served: its nodes' provers accept their shares
    on their next tick after a publish (a command run in this process follows at once, where a new
    interpreter took a second or two to start)."""
    deadline = time.monotonic() + timeout
    while not as_json(datasov("show", dataset, "--json", home=home))["health"]["servable"]:
        if time.monotonic() > deadline:
            raise AssertionError(f"dataset {dataset} not servable after {timeout:.0f} s")
        time.sleep(0.25)


def datasov_process(*args: str, home: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -m datasov ARGS [--home HOME]`` as a new process with no terminal (stdin closed)."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DATASOV_PASSPHRASE", None)
    env.pop("DATASOV_BACKUP_PASSPHRASE", None)
    full = [sys.executable, "-m", "datasov", *_full(args, home)]
    proc = subprocess.run(
        full, capture_output=True, text=True, timeout=180, check=False, env=env, stdin=subprocess.DEVNULL
    )
    return _checked(args, proc, check)


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)
