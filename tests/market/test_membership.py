"""Joining (storage_node.membership): funds checked before anything is sent; re-announcing only on change."""

from __future__ import annotations

import pytest
from eth_account import Account

from contracts.announcements import Announcement
from contracts.chain import Chain
from contracts.connection import ETHER
from storage_node.membership import InsufficientFunds, JoinError, ensure_announced, join, latest_announcement

from .conftest import DEPLOYER, OPERATORS, STAKE


def terms(chain: Chain, address: str, **kw: object) -> Announcement:
    return Announcement(operator=address, http_url="http://127.0.7.1:7401", chain_id=chain.deployment.chain_id, **kw)  # type: ignore[arg-type]


async def test_join_checks_funds_before_sending_anything(chain: Chain) -> None:
    poor = Account.create()
    with pytest.raises(InsufficientFunds, match="no ETH"):
        await join(chain, poor, terms(chain, poor.address))
    await chain.send_eth(DEPLOYER, poor.address, ETHER)
    block = await chain.block_number()
    with pytest.raises(InsufficientFunds, match="holds 0"):
        await join(chain, poor, terms(chain, poor.address))
    assert await chain.block_number() == block  # nothing was sent
    with pytest.raises(JoinError, match="below the minimum"):
        await join(chain, OPERATORS[0], terms(chain, OPERATORS[0].address), stake=STAKE - 1)


async def test_rejoin_announces_only_what_changed_and_newest_wins(chain: Chain) -> None:
    op = OPERATORS[0]
    first = await join(chain, op, terms(chain, op.address, ask=5))
    assert first.announced
    assert first.stake == STAKE
    again = await join(chain, op, terms(chain, op.address, ask=5))
    assert not again.announced
    assert again.staked == 0
    assert not await ensure_announced(chain, op, terms(chain, op.address, ask=5))
    assert await ensure_announced(chain, op, terms(chain, op.address, ask=6))  # new terms: announced
    latest = await latest_announcement(chain, op.address)
    assert latest is not None
    assert latest.announcement.ask == 6
    assert len(await chain.announced(operator=op.address)) == 2
    more = await join(chain, op, terms(chain, op.address, ask=6), stake=STAKE)
    assert more.stake == 2 * STAKE
    await chain.leave(op)
    with pytest.raises(JoinError, match="leaving"):
        await join(chain, op, terms(chain, op.address, ask=6))
