"""`datasov devnet up --capacity SIZE`: what each node offers, announced on-chain as asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from datasov.cli import cli

from .conftest import as_json, datasov, start_devnet, stop_devnet

GiB = 1 << 30


@pytest.mark.timeout(300)
def test_each_node_offers_the_capacity_asked_for(tmp_path: Path) -> None:
    """An in-process devnet of 2 nodes at 3 GiB each: the chain's announcements say 3 GiB (the
    default, 1 GiB, refuses a 3-of-10 share of a 4 GiB file)."""
    proc, described = start_devnet(tmp_path, "--in-process", "--nodes", "2", "--capacity", "3GiB", "--no-guardians")
    try:
        args = ["nodes", "--rpc", described["rpc"], "--deployment", str(tmp_path / "deployment.json")]
        listed = as_json(datasov(*args, "--no-probe", "--json"))["nodes"]
        assert sorted(n["operator"] for n in listed) == sorted(n["address"] for n in described["nodes"])
        assert [n["capacity"] for n in listed] == [3 * GiB, 3 * GiB]
        status = as_json(datasov("node", "status", "--json", "--home", str(tmp_path / "nodes" / "node-00")))
        assert status["capacity"] == 3 * GiB
    finally:
        stop_devnet(proc)


@pytest.mark.parametrize("bad", ["0", "lots", "-1GiB"])
def test_a_capacity_that_is_not_a_size_is_refused_before_anything_starts(tmp_path: Path, bad: str) -> None:
    result = CliRunner().invoke(cli, ["devnet", "up", "--home", str(tmp_path), "--rpc-port", "0", "--capacity", bad])
    assert result.exit_code == 2
    assert "--capacity" in result.output
    assert not (tmp_path / "devnet.json").exists()
