"""A `datasov devnet up` process for the CLI tests, and `datasov(...)` to run commands as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Datasov = Callable[..., subprocess.CompletedProcess[str]]


def datasov(*args: str, home: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -m datasov ARGS [--home HOME]`` with no terminal (stdin closed)."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DATASOV_PASSPHRASE", None)
    full = [sys.executable, "-m", "datasov", *args, *(["--home", str(home)] if home else [])]
    proc = subprocess.run(
        full, capture_output=True, text=True, timeout=180, check=False, env=env, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args}: exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


def start_devnet(home: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start `datasov devnet up --json` and return it with its description, once everything is up."""
    cmd = [sys.executable, "-m", "datasov", "devnet", "up", "--home", str(home), "--rpc-port", "0", "--json"]
    cmd += ["--block-time", "0.5", *extra]
    log = (home / "devnet.log").open("a")  # a file, not a pipe: a chatty devnet can never block on it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    log.close()
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:  # the description is printed as soon as everything is up
            lines.append(line)
            if line.rstrip() == "}":
                break
        return proc, json.loads("".join(lines))
    except BaseException:  # a start that failed or timed out (pytest-timeout) must not leave it running
        stop_devnet(proc, check=False)
        raise


def stop_devnet(proc: subprocess.Popen[str], *, check: bool = True) -> None:
    """SIGTERM (the devnet stops its node processes), then SIGKILL if it has not ended within 60 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0 or not check


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("devnet")
    proc, described = start_devnet(home)
    try:
        assert len(described["nodes"]) == 12
        yield home
    finally:
        stop_devnet(proc)
