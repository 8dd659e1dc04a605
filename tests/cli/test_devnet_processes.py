"""`datasov devnet up` runs each node as its own process: a killed node is a real kill -9, and
nothing outlives a devnet, even one killed by SIGKILL."""

from __future__ import annotations

import json
import os
import select
import signal
import time
from pathlib import Path

import pytest

from .conftest import datasov, start_devnet

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    return wait_gone([pid], within=0) == [pid]


def wait_gone(pids: list[int], within: float = 60.0) -> list[int]:
    """The pids still running after ``within`` seconds: waits on each one's pidfd (readable once the
    process has ended, whoever its parent is), no polling."""
    left = []
    deadline = time.monotonic() + within
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
                left.append(pid)
        finally:
            os.close(fd)
    return left


@pytest.mark.timeout(600)  # devnet up: node init, node join and node run children per node; slow on a loaded machine
def test_nodes_are_processes_on_their_own_addresses_and_die_with_a_killed_devnet(tmp_path: Path) -> None:
    proc, described = start_devnet(tmp_path, "--nodes", "3")
    try:
        pids = [int(p) for p in described["pids"].values()]
        assert len(set(pids)) == 3
        assert proc.pid not in pids
        assert all(alive(p) for p in pids)
        hosts = [n["url"].split("//")[1].rsplit(":", 1)[0] for n in described["nodes"]]
        assert hosts == ["127.0.1.1", "127.0.2.1", "127.0.3.1"]
        assert described["bootstrap"][0].startswith("/ip4/127.0.1.1/tcp/")
        status = json.loads(datasov("node", "status", "--json", "--home", str(tmp_path / "nodes" / "node-01")).stdout)
        assert status["operator"] == described["nodes"][1]["address"]
        os.kill(pids[1], signal.SIGKILL)  # a killed node is a real kill -9: the others keep running
        assert wait_gone([pids[1]]) == []
        assert alive(pids[0])
        assert alive(pids[2])
    finally:
        proc.kill()  # the devnet itself, by SIGKILL: it cannot stop its children
        proc.communicate(timeout=30)
    assert wait_gone(pids) == []  # PR_SET_PDEATHSIG stopped them
