"""A `datasov devnet up` process for the CLI tests; `datasov(...)` runs a command as a user types it, in
this process (tests/support/cli.py), and `datasov_process(...)` as a new interpreter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import as_json, datasov, datasov_process
from tests.support.devnet import start_devnet, stop_devnet

__all__ = ["as_json", "datasov", "datasov_process", "start_devnet", "stop_devnet"]


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("devnet")
    proc, described = start_devnet(home)
    try:
        assert len(described["nodes"]) == 12
        yield home
    finally:
        stop_devnet(proc)
