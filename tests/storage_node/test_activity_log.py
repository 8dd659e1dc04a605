"""What the node tells its operator: one INFO line per accepted share and per download, a summary."""

from __future__ import annotations

import logging
import os

import pytest

from storage_node.client import NodeClient

from .conftest import NodeFactory, publisher
from .test_api import BLOCK, DS, order_for

pytestmark = pytest.mark.asyncio(loop_scope="function")


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage() and r.levelno == logging.INFO]


async def test_one_line_per_share_and_per_download_then_a_summary(
    make_node: NodeFactory, client: NodeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="datasov")
    node = await make_node()
    data = os.urandom(4 * BLOCK)
    order = order_for(node, data)
    owner = publisher()
    await client.put_share(node.url, order, owner, data)
    for i in range(4):  # one download in four range requests
        await client.get_share(node.url, DS, 0, start=i * BLOCK, end=(i + 1) * BLOCK)
    await client.head(node.url, DS, 0)  # a HEAD serves nothing
    accepted = lines(caplog, "accepted share")
    assert accepted == [f"accepted share {DS}/0 ({len(data)} bytes) from {owner.address}"]
    served = lines(caplog, "serving share")
    assert len(served) == 1
    assert served[0].startswith(f"serving share {DS}/0 to 127.0.0.1")
    assert node.state is not None
    summary = node.state.activity.summary(shares=1, used=len(data), capacity=node.config.capacity)
    assert "1 share(s) held" in summary
    assert "1 accepted" in summary
    assert "1 download(s) (4 range requests" in summary
    assert "proofs ok 0, failed 0" in summary
    everything = " ".join(r.getMessage() for r in caplog.records)
    assert order.nonce not in everything  # nothing of the order's secrets or signature in the log
    assert bytes(owner.key).hex() not in everything


async def test_summary_counts_reset_each_period(make_node: NodeFactory, client: NodeClient) -> None:
    node = await make_node()
    data = os.urandom(BLOCK)
    await client.put_share(node.url, order_for(node, data), publisher(), data)
    assert node.state is not None
    activity = node.state.activity
    node.state.metrics.proofs.labels("ok").inc(3)  # what the prover counts
    node.state.metrics.proofs.labels("failed").inc()
    first = activity.summary(shares=1, used=len(data), capacity=node.config.capacity)
    second = activity.summary(shares=1, used=len(data), capacity=node.config.capacity)
    assert "1 accepted" in first
    assert "0 accepted" in second
    assert "proofs ok 3, failed 1" in second
    await node.log_summary()  # what the periodic task calls
