"""The CLI without a network: `datasov demo` tells the whole story on its own, and a command used
before `datasov init` (or asked for --help) says what to do. No devnet here, so loadfile can run this
file on the other worker than the CLI session devnet (tests/cli/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from datasov.cli import cli

from .cli.conftest import datasov, datasov_process


def test_helpful_errors_without_setup(tmp_path: Path) -> None:
    missing = datasov_process("datasets", home=tmp_path / "nowhere", check=False)  # exit code of a real process
    assert missing.returncode == 1
    assert "datasov init" in missing.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["publish"],
        ["license", "buy"],
        ["fetch"],
        ["audit"],
        ["audit", "verify"],
        ["devnet", "up"],
        ["demo"],
        ["agent", "run"],
        ["durability"],
        ["guardian", "run"],
        ["guardians"],
        ["guardians", "replace"],
        ["pool", "create"],
        ["pool", "buy"],
        ["pool", "release"],
        ["pools"],
    ],
)
def test_help_has_an_example(command: list[str]) -> None:
    # in this process (the root command loads each command as `python -m datasov` does): the
    # subprocess path of --help is covered by tests/cli/test_lazy_commands.py
    result = CliRunner().invoke(cli, [*command, "--help"], prog_name="datasov", terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, command


def test_demo_tells_the_whole_story() -> None:
    proc = datasov("demo", "--json")
    summary = json.loads(proc.stdout)
    assert summary["ok"]
    assert len(summary["steps"]) == 11  # the last: a node joins from outside, is paid (datasov/demo_join.py)
    assert all(step["ok"] for step in summary["steps"])
