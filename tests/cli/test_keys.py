"""`datasov keys export|import`: an encrypted backup moves data keys to another home, and nothing
else about it is readable or changes on a wrong passphrase."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from contracts.devchain import dev_account
from datasov.cli import cli
from erasure import envelope
from market.keystore import Keystore

HOME_PASS, BACKUP_PASS = "home passphrase", "backup passphrase"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATASOV_PASSPHRASE", HOME_PASS)
    monkeypatch.setenv("DATASOV_BACKUP_PASSPHRASE", BACKUP_PASS)
    return CliRunner()


def test_export_import_moves_data_keys(runner: CliRunner, tmp_path: Path) -> None:
    source = Keystore.create(tmp_path / "a", HOME_PASS.encode(), account=dev_account(1))
    key = envelope.new_data_key()
    source.add_dataset(b"\x22" * 32, key, dataset_id=3)
    target = Keystore.create(tmp_path / "b", HOME_PASS.encode(), account=dev_account(1))
    backup = tmp_path / "keys.backup"

    out = runner.invoke(cli, ["keys", "export", "-o", str(backup), "--home", str(tmp_path / "a"), "--json"])
    assert out.exit_code == 0, out.output
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    raw = backup.read_text()
    assert key.hex() not in raw
    assert bytes(dev_account(1).key).hex() not in raw
    again = runner.invoke(cli, ["keys", "export", "-o", str(backup), "--home", str(tmp_path / "a")])
    assert again.exit_code == 1  # never overwrites

    imported = runner.invoke(cli, ["keys", "import", str(backup), "--home", str(tmp_path / "b"), "--json"])
    assert imported.exit_code == 0, imported.output
    assert '"same_account": true' in imported.output
    assert target.dataset_key(3).data_key == key


def test_wrong_backup_passphrase_changes_nothing(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Keystore.create(tmp_path / "a", HOME_PASS.encode())
    source.add_dataset(b"\x33" * 32, envelope.new_data_key(), dataset_id=4)
    target = Keystore.create(tmp_path / "b", HOME_PASS.encode())
    before = (tmp_path / "b" / "keystore.json").read_bytes()
    backup = tmp_path / "keys.backup"
    assert runner.invoke(cli, ["keys", "export", "-o", str(backup), "--home", str(tmp_path / "a")]).exit_code == 0

    monkeypatch.setenv("DATASOV_BACKUP_PASSPHRASE", "not the backup passphrase")
    wrong = runner.invoke(cli, ["keys", "import", str(backup), "--home", str(tmp_path / "b"), "--json"])
    assert wrong.exit_code == 1
    assert '"name": "WrongPassphrase"' in wrong.output
    garbage = tmp_path / "garbage"
    garbage.write_text("{}")
    bad = runner.invoke(cli, ["keys", "import", str(garbage), "--home", str(tmp_path / "b")])
    assert bad.exit_code == 1
    assert "not a datasov key backup" in bad.output
    assert (tmp_path / "b" / "keystore.json").read_bytes() == before
    assert target.datasets() == []
