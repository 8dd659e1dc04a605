"""A `datasov devnet up` process for the CLI tests, and `datasov(...)` to run commands as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.devnet import start_devnet, stop_devnet

__all__ = ["as_json", "datasov", "start_devnet", "stop_devnet"]

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


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("devnet")
    proc, described = start_devnet(home)
    try:
        assert len(described["nodes"]) == 12
        yield home
    finally:
        stop_devnet(proc)
