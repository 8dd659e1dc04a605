"""An outside operator joins the running devnet with its own commands: init with terms, join (stake +
announce), status, re-join (no new announcement), leave, withdraw (nothing yet), all with --json."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner

from contracts.devchain import dev_account
from datasov.cli import cli

from .conftest import as_json, datasov

OPERATOR = dev_account(4)  # funded with ETH and tokens by the devnet; no other CLI test stakes it


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def test_an_operator_joins_reports_and_leaves(devnet: Path, tmp_path: Path) -> None:
    home = tmp_path / "op"
    home.mkdir()
    key = home / "operator.key"
    key.write_text(bytes(OPERATOR.key).hex() + "\n")
    key.chmod(0o600)
    port = _free_port("127.0.200.1")
    created = as_json(
        datasov(
            "node",
            "init",
            "--home",
            str(home),
            "--http",
            f"127.0.200.1:{port}",
            "--capacity",
            "2GiB",
            "--ask",
            "0.001",
            "--region",
            "test-lab",
            "--json",
        )
    )
    assert created["operator"] == OPERATOR.address
    assert created["ask"] == 10**15
    chain_args = ["--rpc", json.loads((devnet / "devnet.json").read_text())["rpc"]]
    chain_args += ["--deployment", str(devnet / "deployment.json")]

    joined = as_json(datasov("node", "join", "--home", str(home), *chain_args, "--stake", "150", "--json"))
    assert joined["announced"]
    assert joined["stake"] == str(150 * 10**18)
    assert joined["url"] == f"http://127.0.200.1:{port}"
    again = as_json(datasov("node", "join", "--home", str(home), *chain_args, "--json"))
    assert not again["announced"]  # same URL and terms: nothing re-announced, nothing added
    assert again["staked"] == "0"

    status = as_json(datasov("node", "status", "--home", str(home), *chain_args, "--json"))
    assert status["region"] == "test-lab"
    assert status["chain"]["registered"]
    assert status["chain"]["stake"] == str(150 * 10**18)
    assert not status["chain"]["leaving"]

    seen = as_json(datasov("nodes", *chain_args, "--timeout", "5", "--json"))
    listed = {n["operator"]: n for n in seen["nodes"]}
    assert len(listed) == 13  # the devnet's 12, announced as `node join` does, and this one
    ours = listed[OPERATOR.address]
    assert (ours["url"], ours["ask"], ours["region"]) == (f"http://127.0.200.1:{port}", str(10**15), "test-lab")
    assert not ours["reachable"]  # it was never started
    assert all(n["reachable"] for a, n in listed.items() if a != OPERATOR.address)
    assert len({n["url"].split(":")[1] for n in listed.values()}) == 13  # each on its own 127.0.x.1

    unconfirmed = datasov("node", "leave", "--home", str(home), *chain_args, check=False)
    assert unconfirmed.returncode == 2  # no terminal to ask on and no --yes: nothing changed
    left = as_json(datasov("node", "leave", "--home", str(home), *chain_args, "--yes", "--json"))
    assert left["exit_epoch"] > 0
    status = as_json(datasov("node", "status", "--home", str(home), *chain_args, "--json"))
    assert status["chain"]["leaving"]
    assert not status["chain"]["exit_ready"]
    withdrawn = datasov("node", "withdraw", "--home", str(home), *chain_args, "--json", check=False)
    if withdrawn.returncode == 0:  # the devnet mines on its own: the exit delay may have passed already
        assert as_json(withdrawn)["unstaked"] == str(150 * 10**18)
        assert as_json(withdrawn)["withdrawn"] == "0"
    else:
        assert withdrawn.returncode == 1
        assert "locked until epoch" in withdrawn.stderr
    rejoin = datasov("node", "join", "--home", str(home), *chain_args, check=False)
    assert rejoin.returncode == 1
    assert "leaving" in rejoin.stderr
    claimed = as_json(datasov("node", "claim", "--home", str(home), *chain_args, "--json"))
    assert claimed["shares"] == 0


def test_publish_with_too_few_qualifying_nodes_fails_before_anything(devnet: Path, tmp_path: Path) -> None:
    home = tmp_path / "owner"
    datasov("init", "--network", str(devnet / "devnet.json"), "--dev-account", "3", "--no-passphrase", home=home)
    sample = Path(__file__).parents[2] / "datasov" / "samples" / "tiny-corpus"
    refused = datasov("publish", str(sample), "-k", "2", "-n", "40", "--json", home=home, check=False)
    assert refused.returncode == 3
    error = json.loads(refused.stdout)["error"]
    assert error["name"] == "NotEnoughNodes"
    assert error["needed"] == 40
    assert 12 <= error["qualified"] < 40
    assert "nothing was published" in error["hint"]


def test_operator_commands_have_help_with_an_example() -> None:
    for command in (
        ["node", "join"],
        ["node", "status"],
        ["node", "claim"],
        ["node", "withdraw"],
        ["node", "leave"],
        ["node", "init"],
        ["nodes"],
    ):
        result = CliRunner().invoke(cli, [*command, "--help"], prog_name="datasov", terminal_width=200)
        assert result.exit_code == 0, result.output
        shown = result.output  # in this process: no interpreter to start per command
        assert "Example:" in shown
        assert "--json" in shown
