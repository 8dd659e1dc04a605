"""ChainDirectory: the nodes clients see are the chain's verified, staked announcements."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from unittest.mock import patch

import pytest

from contracts.announcements import Announcement
from contracts.chain import Chain
from market.chain_directory import ChainDirectory
from market.directory import DirectoryError
from storage_node.membership import join

from .conftest import OPERATORS, STAKE, STRANGER


def announcement(chain: Chain, op: object, i: int, **kw: object) -> Announcement:
    fields: dict[str, object] = {
        "operator": op.address,  # type: ignore[attr-defined]
        "http_url": f"http://127.0.{i + 1}.1:7401",
        "chain_id": chain.deployment.chain_id,
        "ask": 10 * i,
        "capacity": 1 << 30,
        "region": f"r{i}",
    }
    fields.update(kw)
    return Announcement(**fields)  # type: ignore[arg-type]


async def test_verified_staked_newest_announcements_are_listed(chain: Chain, caplog: pytest.LogCaptureFixture) -> None:
    for i, op in enumerate(OPERATORS[:3]):
        await join(chain, op, announcement(chain, op, i), stake=STAKE)
    directory = ChainDirectory(chain, max_age=0)
    nodes = await directory.nodes()
    assert [n.address for n in nodes] == sorted((op.address for op in OPERATORS[:3]), key=str.lower)
    first = next(n for n in nodes if n.address == OPERATORS[0].address)
    assert (first.url, first.ask, first.region, first.stake, first.available) == (
        "http://127.0.1.1:7401",
        0,
        "r0",
        STAKE,
        True,
    )
    assert directory.block == await chain.block_number()

    # re-announcing replaces; an operator replaying another's signed record, or a record for another
    # chain, is ignored and logged, and the previous valid announcement stays
    a0, a1 = OPERATORS[0], OPERATORS[1]
    await chain.announce(a0, announcement(chain, a0, 0, http_url="http://127.0.9.1:7401", issued_at=5).sign(a0))
    stolen = announcement(chain, a0, 0, http_url="http://127.0.66.1:1").sign(a0)
    await chain.send(chain.storage_market.functions.announce(stolen.to_bytes()), a1)
    await chain.announce(a1, announcement(chain, a1, 1, chain_id=999).sign(a1))
    await chain.send(chain.storage_market.functions.announce(b'{"not": "a record"}'), OPERATORS[2])
    with caplog.at_level(logging.WARNING, logger="datasov.directory"):
        nodes = {n.address: n for n in await directory.nodes()}
    assert nodes[a0.address].url == "http://127.0.9.1:7401"
    assert nodes[a1.address].url == "http://127.0.2.1:7401"
    assert nodes[OPERATORS[2].address].url == "http://127.0.3.1:7401"
    assert "for operator" in caplog.text
    assert "for chain 999" in caplog.text
    assert "malformed" in caplog.text
    assert await directory.url_of(a0.address) == "http://127.0.9.1:7401"
    with pytest.raises(DirectoryError):
        await directory.url_of(STRANGER.address)


async def test_leaving_and_unstaked_operators(chain: Chain) -> None:
    for i, op in enumerate(OPERATORS[:2]):
        await join(chain, op, announcement(chain, op, i), stake=STAKE)
    directory = ChainDirectory(chain, max_age=0)
    exit_epoch = await chain.leave(OPERATORS[0])
    nodes = {n.address: n for n in await directory.nodes()}
    assert not nodes[OPERATORS[0].address].available  # still listed: its shares are still served
    assert nodes[OPERATORS[1].address].available
    await chain.advance_to_epoch(exit_epoch)
    await chain.withdraw_stake(OPERATORS[0], STAKE)
    assert [n.address for n in await directory.nodes()] == [OPERATORS[1].address]


async def test_the_view_is_cached_until_max_age(chain: Chain) -> None:
    op = OPERATORS[0]
    await join(chain, op, announcement(chain, op, 0), stake=STAKE)
    directory = ChainDirectory(chain, max_age=3600)
    assert len(await directory.nodes()) == 1
    block = directory.block
    await join(chain, OPERATORS[1], announcement(chain, OPERATORS[1], 1), stake=STAKE)
    assert len(await directory.nodes()) == 1  # cached
    assert directory.block == block
    assert await directory.url_of(OPERATORS[1].address) == "http://127.0.2.1:7401"  # an unknown one re-reads
    assert len(await directory.nodes()) == 2


async def test_callers_at_once_read_each_block_range_once(chain: Chain) -> None:
    """show and placement ask about several nodes concurrently: the first refreshes run one after the
    other, so each event is applied once (a ProofMissed applied twice would slash a stake twice)."""
    for i, op in enumerate(OPERATORS[:3]):
        await join(chain, op, announcement(chain, op, i), stake=STAKE)
    reads: list[tuple[int, int]] = []
    announced = chain.announced

    async def counted(**kw: Any) -> Any:
        reads.append((kw["from_block"], kw["to_block"]))
        return await announced(**kw)

    directory = ChainDirectory(chain, max_age=60)
    with patch.object(chain, "announced", counted):
        urls = await asyncio.gather(*(directory.url_of(op.address) for op in OPERATORS[:3]))
    assert urls == [f"http://127.0.{i + 1}.1:7401" for i in range(3)]
    assert len(reads) == 1
    assert [n.stake for n in await directory.nodes()] == [STAKE] * 3
