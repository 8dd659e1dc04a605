"""The lab's wait for a key: the owner's, or t guardians' pieces, bad ones proven and named."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from contracts import pieces, shamir
from contracts.models import LicenseStatus
from contracts.terms import Purpose
from market import buyer

from .conftest import Guarded


async def _garbage(g: Guarded, lic: int) -> None:
    chain = g.chain
    junk = shamir.Piece(1, os.urandom(31).rjust(32, b"\0"))
    sealed = pieces.seal_to_buyer(junk, await chain.buyer_key(lic), await chain.delivery_context(lic))
    await chain.deliver_key_piece(g.guardians[0], lic, 1, sealed)


async def test_license_buy_waits_for_pieces_skips_a_bad_one_and_gets_the_key(guarded: Guarded) -> None:
    g = guarded
    lic = await buyer.buy(g.chain, g.buyer, g.dataset_id, Purpose.AI_TRAINING)
    await _garbage(g, lic)
    tasks = [asyncio.create_task(a.run()) for a in g.agents[1:]]
    try:
        key = await buyer.wait_for_key(g.chain, g.buyer, lic, within=120, poll=0.05)
    finally:
        for a, t in zip(g.agents[1:], tasks, strict=True):
            a.stop()
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
    assert key == g.published.key
    assert await g.chain.bad_pieces(g.guardians[0].address) == 1
    assert (await g.chain.get_license(lic)).status == LicenseStatus.DELIVERED


async def test_a_bad_piece_with_no_other_guardian_left_names_the_guardian(guarded: Guarded) -> None:
    g = guarded
    lic = await buyer.buy(g.chain, g.buyer, g.dataset_id, Purpose.AI_TRAINING)
    await _garbage(g, lic)
    for a in g.agents[1:3]:
        await a.tick()
    with pytest.raises(buyer.BadPieces) as caught:
        await buyer.wait_for_key(g.chain, g.buyer, lic, within=0, poll=0.05)
    assert caught.value.guardians == {1: g.guardians[0].address}
    assert g.guardians[0].address in str(caught.value)
    assert not caught.value.refundable
