"""`devnet up` and `node run` check what would fail later first, each with one clear line;
`--dev-account` numbers match the list `devnet up` prints."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from contracts.devchain import dev_account
from datasov.cli import cli
from datasov.cli.devnet import dev_accounts
from market.keystore import Keystore


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_devnet_up_refuses_a_port_in_use(busy_port: int, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["devnet", "up", "--home", str(tmp_path), "--rpc-port", str(busy_port)])
    assert result.exit_code == 1
    assert f"port {busy_port} is already in use" in result.output
    assert not (tmp_path / "devnet.json").exists()


def test_node_run_refuses_a_port_in_use(busy_port: int, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["node", "init", "--home", str(tmp_path)]).exit_code == 0
    result = runner.invoke(
        cli, ["node", "run", "--home", str(tmp_path), "--http", f"127.0.0.1:{busy_port}", "--dev-accept-any-order"]
    )
    assert result.exit_code == 1
    assert f"port {busy_port} is already in use" in result.output
    assert "Traceback" not in result.output


def test_a_second_devnet_up_on_a_home_refuses(tmp_path: Path) -> None:
    (tmp_path / "devnet.json").write_text("{}")
    (tmp_path / "devnet.pid").write_text(f"{os.getpid()}\n")  # a live process: this one
    running = CliRunner().invoke(cli, ["devnet", "up", "--home", str(tmp_path), "--rpc-port", "0"])
    assert running.exit_code == 1
    assert "already running" in running.output
    (tmp_path / "devnet.pid").unlink()
    stale = CliRunner().invoke(cli, ["devnet", "up", "--home", str(tmp_path), "--rpc-port", "0"])
    assert stale.exit_code == 1
    assert "--fresh" in stale.output
    assert (tmp_path / "devnet.json").read_text() == "{}"  # nothing changed


def test_dev_account_numbers_match_the_printed_list(tmp_path: Path) -> None:
    listed = dev_accounts()
    assert [n for n, _, _ in listed] == [1, 2, 3, 4]
    assert all(address == dev_account(n).address for n, address, _ in listed)
    env = {"DATASOV_PASSPHRASE": "x" * 12}
    ok = CliRunner(env=env).invoke(cli, ["init", "--home", str(tmp_path / "a"), "--dev-account", "1"])
    assert ok.exit_code == 0, ok.output
    assert Keystore.open(tmp_path / "a", b"x" * 12).account.address == listed[0][1]
    for bad in ("0", "5"):
        refused = CliRunner(env=env).invoke(cli, ["init", "--home", str(tmp_path / bad), "--dev-account", bad])
        assert refused.exit_code == 2
        assert not (tmp_path / bad).exists()
