"""The root command imports a command's module only when that command runs (datasov.cli.COMMANDS)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from datasov.cli import COMMANDS, cli

HEAVY = ("web3", "eth_account", "rich", "zfec", "libp2p", "aiohttp", "nacl")


def loaded_after(code: str) -> dict[str, bool]:
    """Which of HEAVY a fresh interpreter has imported after running ``code``."""
    probe = f"import sys, json\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    loaded: dict[str, bool] = json.loads(proc.stdout.splitlines()[-1])
    return loaded


def test_importing_the_cli_imports_no_command() -> None:
    assert not any(loaded_after("import datasov.cli").values())


def test_help_imports_no_command_and_lists_every_one() -> None:
    code = (
        "import contextlib, io\nimport datasov.cli as c\nout = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    c.cli.main(['--help'], prog_name='datasov')\n"
        "sys.stderr.write(out.getvalue())"
    )
    probe = f"import sys, json\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert not any(json.loads(proc.stdout).values())
    listed = proc.stderr.split("Commands:", 1)[1].split()
    for name in COMMANDS:
        assert name in listed, f"datasov --help does not list {name}"


def test_a_command_imports_what_it_uses_only() -> None:
    # the pipeline runs on this machine alone: no chain client, no network stack
    loaded = loaded_after("import datasov.cli as c\nc.cli.get_command(None, 'pipeline')")
    assert loaded["nacl"]  # its encryption
    assert not loaded["web3"]
    assert not loaded["libp2p"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_entry_loads_its_command_with_the_same_help(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command)
    assert command.name == name
    assert COMMANDS[name][1] == command.get_short_help_str(10_000), "keep the root's help line in step"


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output
