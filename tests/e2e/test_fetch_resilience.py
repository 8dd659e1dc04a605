"""A fetch succeeds while enough shares are online: slow holders, holders marked faulty, busy CPUs.

A slow holder is not a missing one: the buyer asks it again with longer waits (and asks the other
holders meanwhile) until an overall deadline. A holder marked faulty on-chain may still serve good
blocks (every block is verified), so it is asked last rather than never. These tests run on their
own network: they slash operators, which the shared one must not see.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from contracts.chain import ChainConfig
from contracts.devchain import dev_account
from contracts.terms import Purpose
from datasov.demo import _same_tree
from datasov.devnet import LocalNetwork
from market import buyer
from market.directory import NodeInfo, StaticDirectory
from market.keystore import Keystore
from storage_node.client import NodeClient

from .conftest import SAMPLE, Offer, Publish

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalNetwork]:
    network = await LocalNetwork.start(
        tmp_path_factory.mktemp("resilience-net"), nodes=10, config=ChainConfig(epoch_blocks=50), provers=False
    )
    yield network
    await network.stop()


async def _licensed(net: LocalNetwork, lab: Keystore, publish: Publish) -> tuple[Offer, int]:
    offer = await publish()
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()
    return offer, license_id


# ------------------------------------------------------------------ slow holders ----


@asynccontextmanager
async def delaying_proxy(target: str, delay: float) -> AsyncIterator[str]:
    """An HTTP proxy in front of ``target`` that holds every request ``delay`` seconds before
    forwarding it (a node on a slow link, or starved of CPU); yields its URL."""
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(delay)  # the injected slowness of this holder, not a wait in the test
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("range", "content-type")}
        async with session.request(
            request.method, target + request.path_qs, headers=headers, data=await request.read()
        ) as upstream:
            body = await upstream.read()
            kept = ("content-type", "content-range", "x-datasov-root", "accept-ranges", "retry-after")
            out = {k: v for k, v in upstream.headers.items() if k.lower() in kept}
            return web.Response(status=upstream.status, body=body, headers=out)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await session.close()


# The client's first wait (seconds; each retry doubles it). What the test shows is in the ratios of the
# holders' delays to it, not in its size: 1 s made this one test 33 s of the suite's (CI), 0.4 s ~1/2.5 of it.
FIRST_TIMEOUT = 0.4


async def test_fetch_succeeds_when_every_holder_answers_slowly(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path
) -> None:
    offer, license_id = await _licensed(net, lab, publish)
    nodes = await net.directory.nodes()
    slow: list[NodeInfo] = []
    async with AsyncExitStack() as stack:
        for i, node in enumerate(nodes):  # every holder 1.5-2.5 times slower than the client's first timeout
            url = await stack.enter_async_context(delaying_proxy(node.url, FIRST_TIMEOUT * (1.5 + 0.5 * (i % 3))))
            slow.append(NodeInfo(node.address, url))
        async with NodeClient(timeout=FIRST_TIMEOUT, retries=3) as client:  # tries allow 1, 2 and 4 times it
            report = await buyer.fetch(
                net.chain, lab, StaticDirectory(slow), client, license_id, tmp_path / "out", deadline=120
            )
    assert _same_tree(SAMPLE, tmp_path / "out")
    assert report.bytes_written == offer.pub.manifest.plaintext_size


# ------------------------------------------------------------- holders marked faulty ----


async def test_holders_marked_faulty_are_asked_last_not_never(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    offer, license_id = await _licensed(net, lab, publish)
    pub, chain = offer.pub, net.chain
    stakes = {i: (await chain.get_operator(pub.placements[i].address)).stake for i in range(7)}
    active = max([(await chain.get_share(pub.deal_id, i)).active_from for i in range(10)])
    await chain.advance_to_epoch(active + 1)  # nobody proved epoch `active`: every share missed it
    for i in range(7):  # 7 of 10 reported: 3 unmarked shares are fewer than k = 4
        await chain.report_missed_proof(dev_account(4), pub.deal_id, i, active)
    assert [(await chain.get_share(pub.deal_id, i)).faulty for i in range(10)] == [True] * 7 + [False] * 3
    try:
        report = await buyer.fetch(chain, lab, net.directory, client, license_id, tmp_path / "out")
    finally:  # the slashed operators stake again, so this network's other tests can place shares
        for i in range(7):
            operator = net.node_of(pub.placements[i].address).node.operator
            lost = stakes[i] - (await chain.get_operator(operator.address)).stake
            if lost > 0:
                await chain.add_stake(operator, lost)
    assert _same_tree(SAMPLE, tmp_path / "out")
    assert sorted(report.faulty) == list(range(7))
    assert set(report.shares_used) & set(range(7))  # the marked holders served verified blocks


# ------------------------------------------------------------------- busy cores ----


@contextmanager
def cpu_burners(count: int) -> Iterator[list[int]]:
    """``count`` processes spinning on a core each; killed (by their own pid) on the way out."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


async def test_fetch_succeeds_while_every_core_is_busy(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path
) -> None:
    offer, license_id = await _licensed(net, lab, publish)
    with cpu_burners(2 * (os.cpu_count() or 2)):
        async with NodeClient() as client:  # the CLI's client
            report = await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "out")
    assert _same_tree(SAMPLE, tmp_path / "out")
    assert report.bytes_written == offer.pub.manifest.plaintext_size
