"""An operator that is leaving the network (``StorageMarket.leave``: an exit epoch set) is no longer
a guardian candidate: it is on its way out, and a key piece given to it would leave with it."""

from __future__ import annotations

import pytest

from contracts import errors
from contracts.devchain import DevChain
from market import guardians

from .conftest import OPERATORS, OWNER, Guarded, T


async def test_a_leaving_operator_is_not_staked_for_guardianship(guarded: Guarded) -> None:
    chain: DevChain = guarded.chain
    leaver = OPERATORS[0]
    assert await chain.is_staked_operator(leaver.address)
    assert leaver.address in await chain.guardian_candidates()
    await chain.leave(leaver)
    assert (await chain.get_operator(leaver.address)).stake >= await chain.min_stake()  # its stake is still there
    assert not await chain.is_staked_operator(leaver.address)
    assert leaver.address not in await chain.guardian_candidates()
    with pytest.raises(errors.NotStakedOperator):
        await chain.register_guardian_key(leaver, b"\x01" * 32)
    members = [g.address for g in guarded.guardians]
    assert leaver.address in members
    with pytest.raises(guardians.GuardianError, match="not staked"):  # the owner's side checks first
        await guardians.share_key(chain, OWNER, guarded.dataset_id, guarded.published.key, members, T, fee_bps=500)
    with pytest.raises(errors.NotStakedOperator):  # and the contract refuses it
        await chain.set_guardians(
            OWNER, guarded.dataset_id, members, T, [bytes(32)] * len(members), [b"x"] * len(members)
        )
