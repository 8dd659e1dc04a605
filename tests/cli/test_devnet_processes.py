"""`datasov devnet up` runs each node as its own process on libp2p: `datasov nodes` finds their DHT
records, a killed node is a real kill -9, and nothing outlives a devnet, even one killed by SIGKILL.
The tests share one devnet of 3 node processes, in this order: the last one kills it."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import as_json, datasov, datasov_process, start_devnet, stop_devnet

pytestmark = pytest.mark.slow
NODES = 3
Devnet = tuple[Path, "subprocess.Popen[str]", dict[str, Any]]


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    home = tmp_path_factory.mktemp("processes")
    proc, described = start_devnet(home, "--nodes", str(NODES), "--capacity", "2GiB")
    try:
        yield home, proc, described
    finally:
        stop_devnet(proc, check=False)  # the last test kills it


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


@pytest.mark.timeout(600)  # the devnet starts in its setup
def test_nodes_shows_each_nodes_dht_record_and_whether_it_answers(processes: Devnet) -> None:
    """`datasov nodes` over the node processes: chain terms, DHT last seen, reachable now."""
    devnet, _, described = processes
    assert described["bootstrap"]  # the process devnet writes its first node's multiaddrs
    args = ["nodes", "--rpc", described["rpc"], "--deployment", str(devnet / "deployment.json")]
    for peer in described["bootstrap"]:
        args += ["--bootstrap", peer]
    # a process of its own: in this one, the DHT walk leaves two sockets to the nodes unclosed (ResourceWarning)
    seen = as_json(datasov_process(*args, "--timeout", "5", "--json"))
    listed = {n["operator"]: n for n in seen["nodes"]}
    ours = [listed[n["address"]] for n in described["nodes"]]  # another test may have joined one more
    assert len(ours) == NODES
    for node in ours:
        assert node["in_dht"], node
        assert node["peer_id"].startswith("12D3KooW")
        assert node["dht_seen_ago_s"] is not None
        assert node["dht_seen_ago_s"] >= 0
        assert node["dht_free"] > 0
        assert node["reachable"], node
    assert seen["dht_seconds"] is not None

    text = datasov_process(*args, "--timeout", "5").stdout
    first = ours[0]["operator"]
    assert first in text
    assert "s ago" in text  # last seen: the block, and when its DHT record was published
    assert "DHT records in" in text

    chain_only = as_json(datasov(*args[:5], "--no-probe", "--json"))  # no --dht, no bootstrap peers: the chain alone
    assert chain_only["dht_seconds"] is None
    assert all("in_dht" not in n for n in chain_only["nodes"])
    assert {n["capacity"] for n in chain_only["nodes"] if n["operator"] in listed} == {2 << 30}  # --capacity 2GiB

    no_peers = datasov(*args[:5], "--dht", "--json", check=False)  # --dht with no bootstrap peers to ask
    assert no_peers.returncode == 2
    assert "--dht needs bootstrap peers" in no_peers.stderr


@pytest.mark.timeout(600)  # devnet up: node init, node join and node run children per node; slow on a loaded machine
def test_nodes_are_processes_on_their_own_addresses_and_die_with_a_killed_devnet(processes: Devnet) -> None:
    tmp_path, proc, described = processes
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
