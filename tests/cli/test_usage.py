"""Usage errors exit 2 before anything touches the home or the chain; every command has --json."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from datasov.cli import cli
from datasov.demo import SAMPLE

EXIT_USAGE = 2


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def leaf_commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out: list[tuple[tuple[str, ...], click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the root group imports a command's module on first use
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            out += leaf_commands(command, (*path, name))
        else:
            out.append(((*path, name), command))
    return out


@pytest.mark.parametrize(
    "args",
    [
        ("license", "buy", "1", "--purpose", "foo"),
        ("publish", str(SAMPLE), "-k", "11", "-n", "10"),
        ("publish", str(SAMPLE), "-k", "0"),
        ("publish", str(SAMPLE), "--codec", "nope"),
        ("publish", str(SAMPLE), "--price", "-1"),
        ("license", "buy", "1", "--max-price", "lots"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = invoke(*args, "--home", str(home))
    assert result.exit_code == EXIT_USAGE, result.output
    assert not home.exists()  # refused before anything was created


def test_unknown_purpose_names_the_choices(tmp_path: Path) -> None:
    result = invoke("license", "buy", "1", "--purpose", "foo", "--home", str(tmp_path))
    assert "ai_training" in result.output
    assert "data_mining" in result.output


@pytest.mark.parametrize(
    ("path", "command"), leaf_commands(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_has_json(path: tuple[str, ...], command: click.Command) -> None:
    assert "as_json" in {p.name for p in command.params}, f"datasov {' '.join(path)} has no --json"
