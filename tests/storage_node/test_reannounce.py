"""`datasov node run --rpc` re-announces on start only when the URL or terms changed, and only for
an operator that has joined and is not leaving."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from contracts.announcements import Announcement
from contracts.connection import TOKEN
from contracts.devchain import DevChain, dev_account
from datasov.cli.node import _reannounce
from datasov.nodehome import NodeHome
from storage_node.membership import join, latest_announcement

from .conftest import NodeFactory
from .test_deal_orders import give_operator_key

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_run_reannounces_a_changed_url_once(
    make_node: NodeFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chain = await DevChain.embedded(dev_accounts=8)
    op, stranger = dev_account(5), dev_account(6)
    give_operator_key(tmp_path / "n0", bytes(op.key))
    give_operator_key(tmp_path / "n1", bytes(stranger.key))
    terms = NodeHome("127.0.0.1", 0, 1 << 30, ask=7, region="lab")
    old = Announcement(operator=op.address, http_url="http://127.0.0.1:1", chain_id=chain.deployment.chain_id, ask=7)
    await join(chain, op, old, stake=100 * TOKEN)
    node = await make_node("n0")
    await _reannounce(chain, node, terms)
    latest = await latest_announcement(chain, op.address)
    assert latest is not None
    assert (latest.announcement.http_url, latest.announcement.ask, latest.announcement.region) == (node.url, 7, "lab")
    events = len(await chain.announced(operator=op.address))
    await _reannounce(chain, node, terms)  # a restart with nothing changed: nothing sent
    assert len(await chain.announced(operator=op.address)) == events

    outsider = await make_node("n1")
    with caplog.at_level(logging.WARNING, logger="datasov.node"):
        await _reannounce(chain, outsider, terms)
    assert "has not joined" in caplog.text
    assert await chain.announced(operator=stranger.address) == []
    await chain.close()
