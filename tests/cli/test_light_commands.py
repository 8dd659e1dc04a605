"""Commands that only read the chain load neither web3 nor eth_account (a second of imports between
them: eth_keyfile imports py_ecc's BLS12-381): they read through ``Chain.reader`` (raw JSON-RPC), and
``import datasov.fsspec`` (which data tools do at start-up) loads no CLI and no chain client at all.
Commands that find nodes take their URLs from the chain: none loads py-libp2p (another second) while
every node answers there, though the home's network config has bootstrap peers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import wait_servable

from .conftest import as_json, datasov

HEAVY = ("web3", "eth_account", "eth_keyfile", "py_ecc.bls", "eth_tester", "libp2p")

PROBE = """
import json, runpy, sys
import datasov.cli.fastexit
datasov.cli.fastexit.request = lambda: None  # a fetch exits with os._exit: this probe reads sys.modules after
sys.argv = ["datasov", *json.loads(sys.argv[1])]
code = 0
try:
    runpy.run_module("datasov", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in {heavy!r}))
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def run_probed(*args: str, heavy: tuple[str, ...] = HEAVY) -> tuple[int, list[str], str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DATASOV_PASSPHRASE", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return int(report["code"] or 0), report["heavy"], proc.stdout


# a libp2p peer to bootstrap from, as a process devnet writes its first node's: none of these commands
# may need it (they would import libp2p to dial it, and the probe names the import)
BOOTSTRAP = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


@pytest.fixture(scope="module")
def home(devnet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("light")
    datasov("init", "--network", str(devnet / "devnet.json"), "--dev-account", "3", "--no-passphrase", home=home)
    config = json.loads((home / "config.json").read_text())
    (home / "config.json").write_text(json.dumps({**config, "bootstrap": [BOOTSTRAP]}))
    return home


@pytest.mark.parametrize(
    "command",
    [
        ("balance",),
        ("datasets",),
        ("mine",),
        ("licenses",),
        ("pools",),
        ("nodes", "--no-probe"),
        ("nodes",),  # and a health probe of every node (aiohttp), still no libp2p
        ("guardians", "show", "1"),
    ],
)
def test_a_reading_command_loads_no_web3(home: Path, command: tuple[str, ...]) -> None:
    code, heavy, out = run_probed(*command, "--home", str(home), "--json")
    assert heavy == []
    if command[0] != "guardians":  # the devnet may hold no dataset 1: a refusal, read without web3 too
        assert code == 0
        json.loads(out)


def test_publish_and_show_find_the_nodes_on_the_chain_without_libp2p(home: Path, tmp_path: Path) -> None:
    network = json.loads((home / "config.json").read_text())
    assert network["bootstrap"]  # the DHT is there to join: they need not
    sample = tmp_path / "sample.bin"
    sample.write_bytes(os.urandom(4096))
    code, heavy, out = run_probed(
        "publish", str(sample), "-k", "2", "-n", "3", "--home", str(home), "--json", heavy=("libp2p",)
    )
    assert (code, heavy) == (0, [])
    dataset = json.loads(out)["dataset_id"]
    code, heavy, out = run_probed("show", str(dataset), "--home", str(home), "--json")
    assert (code, heavy) == (0, [])
    shown = json.loads(out)
    assert [s["online"] for s in shown["shares"]] == [True] * 3


def test_a_refused_read_is_named_without_web3(home: Path) -> None:
    code, heavy, out = run_probed("show", "999", "--home", str(home), "--json")
    assert heavy == []
    assert code == 4
    assert json.loads(out)["error"]["name"]


def test_importing_the_fsspec_filesystem_loads_no_cli_and_no_chain_client() -> None:
    probe = (
        "import json, sys, datasov.fsspec; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('web3', 'eth_account', 'click') "
        "or m.startswith('datasov.cli') or m == 'contracts.chain')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout) == []


def test_a_fetch_reads_through_the_reader_and_loads_no_web3(devnet: Path, home: Path, tmp_path: Path) -> None:
    owner = tmp_path / "owner"
    datasov("init", "--network", str(devnet / "devnet.json"), "--dev-account", "4", "--no-passphrase", home=owner)
    sample = tmp_path / "sample.bin"
    sample.write_bytes(os.urandom(100_000))
    dataset = str(as_json(datasov("publish", str(sample), "-k", "2", "-n", "3", "--json", home=owner))["dataset_id"])
    wait_servable(dataset, home)
    datasov("license", "buy", dataset, "--wait", "0", "--yes", "--json", home=home)
    datasov("agent", "run", "--once", "--no-repair", "--json", home=owner)  # the key delivered
    code, heavy, out = run_probed(
        "fetch", "--dataset", dataset, "-o", str(tmp_path / "copy"), "--home", str(home), "--json"
    )
    assert (code, heavy) == (0, [])
    assert json.loads(out)["bytes"] == 100_000
    assert (tmp_path / "copy").read_bytes() == sample.read_bytes()
