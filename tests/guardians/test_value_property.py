"""Hypothesis: any sequence of purchases, honest / garbage / stranger pieces, owner deliveries, lab
checks (with piece disputes), claims, refunds, revocation and time keeps value conserved, delivers
no piece the contract's mayRelease forbade, refuses every non-guardian, and never leaves a refunded
buyer with the key."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import delivery, errors, pieces, shamir
from contracts.devchain import DevChain, dev_account
from contracts.models import LicenseStatus
from contracts.terms import Purpose
from market import piece_buyer
from market.buyer import buy
from market.keystore import Keystore

from .conftest import BUYER, OPERATORS, OWNER, M, World, guardian_secret

STRANGER = dev_account(4)
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            ["purchase", "piece", "garbage", "stranger", "owner", "lab", "claim", "refund", "revoke", "time"]
        ),
        st.integers(0, 1000),
    ),
    min_size=3,
    max_size=12,
)


async def _balances(chain: DevChain, accounts: list[str]) -> dict[str, int]:
    return {a: await chain.balance_of(a) for a in accounts}


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
async def test_value_conserved_and_release_rules_hold(
    chain: DevChain, world: World, actions: list[tuple[str, int]]
) -> None:
    await chain.revert(world.snapshot)
    ds, key = world.published.dataset_id, world.published.key
    members = OPERATORS[:M]
    gset = await chain.guardian_set(ds)
    assert gset is not None
    my_pieces = []
    for i, g in enumerate(members, start=1):
        sealed = (await chain.sealed_pieces(ds, gset.epoch))[i - 1]
        my_pieces.append(pieces.open_from_owner(sealed, i, guardian_secret(g)))
    lm = chain.deployment.license_manager
    accounts = [OWNER.address, BUYER.address, STRANGER.address, lm, *(g.address for g in members)]
    total = sum((await _balances(chain, accounts)).values())
    licenses: list[int] = []
    with tempfile.TemporaryDirectory() as home:
        lab = Keystore.create(Path(home), b"pw", account=BUYER)
        for action, arg in actions:
            lic = licenses[arg % len(licenses)] if licenses else 0
            try:
                if action == "purchase":
                    licenses.append(await buy(chain, lab, ds, Purpose.AI_TRAINING))
                elif action in ("piece", "garbage", "stranger") and lic:
                    index = arg % M + 1
                    value = (
                        my_pieces[index - 1]
                        if action == "piece"
                        else shamir.Piece(index, os.urandom(31).rjust(32, b"\0"))
                    )
                    who = STRANGER if action == "stranger" else members[index - 1]
                    allowed = await chain.may_release(lic)
                    before = await chain.license_pieces(lic)
                    sealed = pieces.seal_to_buyer(value, await chain.buyer_key(lic), await chain.delivery_context(lic))
                    try:
                        await chain.deliver_key_piece(who, lic, index, sealed)
                    except errors.ContractRevert:
                        fresh = index not in before.delivered and index not in before.banned
                        assert not (allowed and action != "stranger" and fresh), "a releasable piece was refused"
                        raise
                    assert allowed, "a piece was accepted although mayRelease said no"
                    assert action != "stranger", "a non-guardian's piece was accepted"
                elif action == "owner" and lic:
                    allowed = await chain.may_release(lic)
                    sealed = delivery.seal(key, await chain.buyer_key(lic), await chain.delivery_context(lic))
                    await chain.deliver_key(OWNER, lic, sealed)
                    assert allowed
                elif action == "lab" and lic:
                    license_ = await chain.get_license(lic)
                    if license_.status in (LicenseStatus.PENDING, LicenseStatus.DELIVERED):
                        out = await piece_buyer.check_pieces(chain, lab, license_)
                        assert out.key in (None, key)
                elif action == "claim" and lic:
                    await chain.claim_payment(STRANGER, lic)
                elif action == "refund" and lic:
                    await chain.refund(STRANGER, lic)
                elif action == "revoke":
                    await chain.revoke_consent(OWNER, ds)
                elif action == "time":
                    await chain.advance_time(chain.deployment.delivery_window // 3 + arg)
            except errors.ContractRevert as err:
                refusal: errors.ContractRevert | None = err
            else:
                refusal = None
            assert refusal is None or type(refusal).__name__ in errors.REVERTS, f"{action}: unnamed {refusal!r}"
            balances = await _balances(chain, accounts)
            assert sum(balances.values()) == total, f"{action}: value not conserved"
            held = 0
            for lid in licenses:
                license_ = await chain.get_license(lid)
                if license_.status == LicenseStatus.PENDING or (
                    license_.status == LicenseStatus.DELIVERED and not license_.paid
                ):
                    held += license_.price
                if license_.status == LicenseStatus.REFUNDED:  # a refunded buyer holds fewer than t good pieces
                    out = await piece_buyer.check_pieces(chain, lab, license_, dispute=False)
                    assert out.key is None
            assert balances[lm] == held, f"{action}: escrow {balances[lm]} != {held} held"
