"""`datasov show` and `datasov datasets` tell the truth about storage health, in text and --json alike.

The commands run as subprocesses against a small in-process network served over JSON-RPC; the
test drives the chain (epochs, missed proofs, the deal's end) between them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from contracts.chain import ChainConfig
from datasov.devnet import LocalNetwork
from datasov.rpc import serve
from erasure.pipeline import Layout
from market import publisher
from market.keystore import Keystore
from market.reporter import FaultReporter
from storage_node.client import NodeClient

from .conftest import PRICE, SAMPLE

LAYOUT = Layout(k=2, n=4)


@dataclass
class Cli:
    net: LocalNetwork
    home: Path

    async def run(self, *args: str) -> str:
        env = {**os.environ, "COLUMNS": "250"}
        env.pop("DATASOV_PASSPHRASE", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "datasov",
            *args,
            "--home",
            str(self.home),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{out.decode()}\n{err.decode()}"
        return out.decode()

    async def json(self, *args: str) -> Any:
        return json.loads(await self.run(*args, "--json"))


@pytest_asyncio.fixture(scope="module")
async def cli(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cli]:
    home = tmp_path_factory.mktemp("health-net")
    net = await LocalNetwork.start(home, nodes=5, config=ChainConfig(epoch_blocks=20), background=False)
    runner, url = await serve(net.chain, "127.0.0.1", 0)
    try:
        lab = Cli(net, tmp_path_factory.mktemp("health-lab"))
        network = str(net.save(url))
        await lab.run("init", "--network", network, "--dev-account", "2", "--no-passphrase")
        yield lab
    finally:
        await runner.cleanup()
        await net.stop()


async def _publish(cli: Cli, owner: Keystore, client: NodeClient, staging: Path) -> publisher.Published:
    return await publisher.publish(
        SAMPLE,
        chain=cli.net.chain,
        keystore=owner,
        directory=cli.net.directory,
        client=client,
        staging=staging,
        options=publisher.PublishOptions(layout=LAYOUT, price=PRICE, epochs=40),
    )


def _row(listing: list[dict[str, Any]], dataset_id: int) -> dict[str, Any]:
    return next(r for r in listing if r["id"] == dataset_id)


@pytest.mark.asyncio
async def test_show_and_datasets_report_faulty_and_ended_storage(
    cli: Cli, owner: Keystore, client: NodeClient, tmp_path: Path
) -> None:
    chain = cli.net.chain
    faulted = await _publish(cli, owner, client, tmp_path / "a")
    ended = await _publish(cli, owner, client, tmp_path / "b")
    await cli.net.prove_all()  # the holders accept their shares
    a, b = str(faulted.dataset_id), str(ended.dataset_id)

    shown = await cli.json("show", a)
    assert shown["health"]["servable"]
    assert shown["health"]["status"] == "servable"
    assert (shown["health"]["healthy"], shown["health"]["faulty"]) == (4, 0)
    assert all(s["healthy"] and s["online"] for s in shown["shares"])
    text = await cli.run("show", a)
    assert "storage: servable (4/4 shares healthy, 0 faulty, need 2)" in text

    # the owner ends storage of b: its deal is over as soon as it is terminated
    await publisher.end_storage(chain, owner.account, cli.net.directory, ended.dataset_id)
    shown = await cli.json("show", b)
    assert not shown["health"]["servable"]
    assert shown["health"]["deal"]["state"] == "terminated"

    # nobody proves a's shares for an epoch; every one is reported faulty, though the nodes still answer
    first = max([(await chain.get_share(faulted.deal_id, i)).active_from for i in range(4)])
    await chain.advance_to_epoch(first)
    await chain.advance_to_epoch(first + 1)
    missed = await FaultReporter(chain, owner.account, deal_ids=[faulted.deal_id]).tick()
    assert sorted(m.share_index for m in missed) == [0, 1, 2, 3]

    shown = await cli.json("show", a)
    health = shown["health"]
    assert (health["servable"], health["healthy"], health["faulty"]) == (False, 0, 4)
    assert all(s["faulty"] and not s["healthy"] for s in shown["shares"])
    assert (health["answering"], health["healthy_answering"]) == (4, 0)
    text = await cli.run("show", a)
    assert "NOT SERVABLE (0/4 shares healthy, 4 faulty, need 2)" in text
    assert "holders answering: 4/4, healthy and answering: 0 (need 2)" in text
    assert "shares online: 4/4" not in text

    listing = await cli.json("datasets")
    assert _row(listing, faulted.dataset_id)["health"]["reason"] == "0/4 shares healthy, 4 faulty, need 2"
    assert _row(listing, ended.dataset_id)["health"]["deal"]["state"] == "ended"  # its last epoch has passed
    assert not any(_row(listing, d)["health"]["servable"] for d in (faulted.dataset_id, ended.dataset_id))
    table = await cli.run("datasets")
    assert table.count("unservable") >= 2
    assert "servable 4/4" not in table
