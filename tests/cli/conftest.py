"""The devnets of the CLI tests; `datasov(...)` runs a command as a user types it, in this process
(tests/support/cli.py), and `datasov_process(...)` as a new interpreter.

``devnet``: `datasov devnet up --in-process` (12 nodes, each on its own 127.0.x.1, and the key
guardians), shared by every file listed under it in tests/conftest.py: one process, ~1/5 of the CPU of
12 node processes to start (docs/test-suite.md). Dev accounts 1 and 2 are test_owner_and_lab's (it
counts their licenses), the other files read only what they made with 3 and 4. What only node processes
have (libp2p, bootstrap peers, DHT records, a kill -9) is tested on 3 of them in test_devnet_processes.py.
"""

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
    proc, described = start_devnet(home, "--in-process")
    try:
        assert len(described["nodes"]) == 12
        assert (home / "devnet.json").exists()
        yield home
    finally:
        stop_devnet(proc)
    assert "devnet stopped" in (home / "devnet.log").read_text()
