"""Issue 17's tests: keys delivered by t of m guardians while the owner is offline, on the embedded EVM."""

from __future__ import annotations

import os

import pytest

from contracts import delivery, errors, pieces, shamir
from contracts.devchain import dev_account
from contracts.models import LicenseStatus
from contracts.terms import LicenseTerms, Permission, Purpose
from market import guardians, piece_buyer
from market.buyer import buy
from market.guardian_agent import GuardianAgent

from .conftest import OPERATORS, OWNER, PRICE, Guarded, T, announce, guardian_secret

STRANGER = dev_account(4)
INFERENCE_ONLY = LicenseTerms(ai_inference=Permission.ALLOWED)


async def _buy(g: Guarded) -> int:
    return await buy(g.chain, g.buyer, g.dataset_id, Purpose.AI_TRAINING)


async def _tick(agents: list[GuardianAgent]) -> None:
    for a in agents:
        await a.tick()


async def _key(g: Guarded, license_id: int) -> piece_buyer.PieceOutcome:
    return await piece_buyer.check_pieces(g.chain, g.buyer, await g.chain.get_license(license_id))


async def test_owner_offline_three_of_five_deliver_and_the_lab_gets_the_key(guarded: Guarded) -> None:
    g, chain = guarded, guarded.chain
    lic = await _buy(g)
    assert await chain.may_release(lic)
    await _tick(g.agents)
    license_ = await chain.get_license(lic)
    assert license_.status == LicenseStatus.DELIVERED
    state = await chain.license_pieces(lic)
    assert state.complete
    assert state.count == T
    out = await _key(g, lic)
    assert out.key == g.published.key
    assert not out.bad
    assert await chain.is_license_valid(lic)
    assert [d.outcome for a in g.agents for d in a.decisions].count("delivered") == T
    # escrow: the owner gets the price less 5% per delivered piece, each delivering guardian 5%
    before = {a: await chain.balance_of(a) for a in [OWNER.address, *(x.address for x in g.guardians)]}
    await chain.advance_time(chain.deployment.dispute_window + 1)
    await chain.claim_payment(g.guardians[0], lic)  # anyone may call it: the money goes where it belongs
    fee = PRICE * 500 // 10_000
    assert await chain.balance_of(OWNER.address) - before[OWNER.address] == PRICE - T * fee
    paid = [await chain.balance_of(x.address) - before[x.address] for x in g.guardians]
    assert sorted(paid) == [0] * (len(g.guardians) - T) + [fee] * T
    assert await chain.balance_of(chain.deployment.license_manager) == 0


async def test_two_guardians_down_still_delivered(guarded: Guarded) -> None:
    lic = await _buy(guarded)
    await _tick(guarded.agents[2:])  # guardians 1 and 2 are down
    assert (await guarded.chain.get_license(lic)).status == LicenseStatus.DELIVERED
    assert (await _key(guarded, lic)).key == guarded.published.key


async def test_a_garbage_piece_is_identified_and_the_lab_still_gets_the_key(guarded: Guarded) -> None:
    g, chain = guarded, guarded.chain
    lic = await _buy(g)
    liar = g.guardians[0]
    garbage = pieces.seal_to_buyer(
        shamir.Piece(1, os.urandom(31).rjust(32, b"\0")), await chain.buyer_key(lic), await chain.delivery_context(lic)
    )
    await chain.deliver_key_piece(liar, lic, 1, garbage)
    await _tick(g.agents[1:3])
    assert (await chain.get_license(lic)).status == LicenseStatus.DELIVERED
    out = await _key(g, lic)  # finds the bad piece, proves it on-chain, rotates the buyer key
    assert out.key is None
    assert out.bad == {1: liar.address}
    assert out.disputed
    assert await chain.bad_pieces(liar.address) == 1
    assert [int(e["index"]) for e in await chain.rejected_pieces(lic)] == [1]
    state = await chain.license_pieces(lic)
    assert (await chain.get_license(lic)).status == LicenseStatus.PENDING
    assert state.banned == {1}
    assert state.delivered == state.revealed == {2, 3}
    assert state.count == 2
    with pytest.raises(errors.GuardianBanned):
        await chain.deliver_key_piece(liar, lic, 1, garbage)
    await _tick(g.agents)  # guardian 4 (or 5) delivers the missing piece to the new key
    assert (await chain.get_license(lic)).status == LicenseStatus.DELIVERED
    out = await _key(g, lic)
    assert out.key == g.published.key
    assert not out.bad


async def test_consent_revoked_between_purchase_and_delivery_every_piece_refused(guarded: Guarded) -> None:
    g, chain = guarded, guarded.chain
    lic = await _buy(g)
    await chain.revoke_consent(OWNER, g.dataset_id)
    assert not await chain.may_release(lic)
    for i, guardian in enumerate(g.guardians, start=1):
        sealed = pieces.seal_to_buyer(
            shamir.Piece(i, bytes(32)), await chain.buyer_key(lic), await chain.delivery_context(lic)
        )
        with pytest.raises(errors.ConsentIsRevoked):
            await chain.deliver_key_piece(guardian, lic, i, sealed)
    await _tick(g.agents)
    assert {d.outcome for a in g.agents for d in a.decisions} == {"refused"}
    assert (await chain.license_pieces(lic)).count == 0
    await chain.refund(STRANGER, lic)
    assert (await chain.get_license(lic)).status == LicenseStatus.REFUNDED


async def test_expired_license_gets_no_piece_and_refunds(guarded: Guarded) -> None:
    g, chain = guarded, guarded.chain
    lic = await _buy(g)
    await chain.advance_time(chain.deployment.delivery_window + 1)
    assert not await chain.may_release(lic)
    sealed = pieces.seal_to_buyer(
        shamir.Piece(1, bytes(32)), await chain.buyer_key(lic), await chain.delivery_context(lic)
    )
    with pytest.raises(errors.DeliveryDeadlinePassed):
        await chain.deliver_key_piece(g.guardians[0], lic, 1, sealed)
    await _tick(g.agents)
    assert all(d.outcome == "refused" for a in g.agents for d in a.decisions)
    await chain.refund(STRANGER, lic)


async def test_the_agent_keeps_a_margin_before_the_deadline(guarded: Guarded) -> None:
    g, chain = guarded, guarded.chain
    lic = await _buy(g)
    await chain.advance_time(chain.deployment.delivery_window - 10)  # inside the margin
    assert await chain.may_release(lic)  # the contract would take it; the agent does not
    await _tick(g.agents)
    assert (await chain.license_pieces(lic)).count == 0


async def test_non_guardian_and_wrong_index_refused(guarded: Guarded) -> None:
    g, chain = guarded, guarded.chain
    lic = await _buy(g)
    sealed = pieces.seal_to_buyer(
        shamir.Piece(1, bytes(32)), await chain.buyer_key(lic), await chain.delivery_context(lic)
    )
    for who, index in ((STRANGER, 1), (OPERATORS[6], 1), (g.guardians[1], 1), (g.guardians[0], 0), (g.guardians[0], 9)):
        with pytest.raises(errors.NotGuardian):
            await chain.deliver_key_piece(who, lic, index, sealed)
    assert (await chain.license_pieces(lic)).count == 0


async def test_owner_deliver_key_still_works_whichever_first(guarded: Guarded) -> None:
    g, chain = guarded, guarded.chain
    lic = await _buy(g)
    await _tick(g.agents[:2])  # two pieces in
    sealed = delivery.seal(g.published.key, await chain.buyer_key(lic), await chain.delivery_context(lic))
    await chain.deliver_key(OWNER, lic, sealed)
    await _tick(g.agents[2:])  # too late: the license is delivered
    assert (await chain.license_pieces(lic)).count == 2
    assert not (await chain.license_pieces(lic)).complete
    before = await chain.balance_of(OWNER.address)
    await chain.advance_time(chain.deployment.dispute_window + 1)
    await chain.claim_payment(STRANGER, lic)
    assert await chain.balance_of(OWNER.address) - before == PRICE  # no guardian fee: the owner delivered


async def test_replaced_guardians_old_pieces_do_not_combine_with_new(guarded: Guarded) -> None:
    g, chain = guarded, guarded.chain
    lic = await _buy(g)
    await _tick(g.agents[:2])  # two pieces of epoch 1
    old_pieces = [a._pieces[(g.dataset_id, 1)] for a in g.agents[:2]]
    from tests.market.conftest import STAKE

    newcomer = OPERATORS[5]
    await chain.register_operator(newcomer, STAKE)
    await announce(chain, [newcomer])
    new_set = [x.address for x in g.guardians[1:]] + [newcomer.address]
    epoch = await guardians.share_key(chain, OWNER, g.dataset_id, g.published.key, new_set, T)
    assert epoch == 2
    with pytest.raises(errors.NotGuardian):  # guardian 1 is no longer one
        await chain.deliver_key_piece(
            g.guardians[0],
            lic,
            1,
            pieces.seal_to_buyer(old_pieces[0], await chain.buyer_key(lic), await chain.delivery_context(lic)),
        )  # type: ignore[arg-type]
    new_agent = GuardianAgent(chain, newcomer, guardian_secret(newcomer), home=g.agents[0].state_path.parent)
    await _tick([*g.agents[1:2], new_agent])  # two pieces of epoch 2: the old ones no longer count
    state = await chain.license_pieces(lic)
    assert state.epoch == 2
    assert state.count == 2
    assert not state.complete
    new_pieces = [
        p for p in (g.agents[1]._pieces.get((g.dataset_id, 2)), new_agent._pieces.get((g.dataset_id, 2))) if p
    ]
    assert len(new_pieces) == 2
    # an old piece with two new ones (distinct indices) does not give the key
    mixed = [old_pieces[1], *new_pieces]  # old index 2, new indices 1 and 5
    assert shamir.combine(mixed) != g.published.key  # type: ignore[list-item]
    await _tick(g.agents[2:3])
    out = await _key(g, lic)
    assert out.key == g.published.key


async def test_inconsistent_commitments_are_the_owners_fault_and_refunded(guarded: Guarded) -> None:
    g, chain = guarded, guarded.chain
    other_key = os.urandom(31).rjust(32, b"\0")  # the owner shares a key other than the committed one
    await guardians.share_key(chain, OWNER, g.dataset_id, other_key, [x.address for x in g.guardians], T)
    lic = await _buy(g)
    await _tick(g.agents)
    before = await chain.balance_of(g.buyer.account.address)
    out = await _key(g, lic)
    assert out.owner_fault
    assert out.disputed
    assert out.key is None
    assert not out.bad
    assert (await chain.get_license(lic)).status == LicenseStatus.REJECTED
    assert await chain.balance_of(g.buyer.account.address) - before == PRICE
    assert await chain.rejected_deliveries(OWNER.address) == 1


async def test_valid_pieces_cannot_be_disputed_and_delivered_license_not_refunded(guarded: Guarded) -> None:
    g, chain = guarded, guarded.chain
    lic = await _buy(g)
    await _tick(g.agents)
    secret = g.buyer.buyer_secret(await chain.buyer_key(lic))
    reveals = [(d.index, d.sealed) for d in await chain.piece_deliveries(lic)]
    with pytest.raises(errors.PiecesAreValid):
        await chain.dispute_pieces(g.buyer.account, lic, secret, reveals, delivery.public_key(delivery.new_secret()))
    with pytest.raises(errors.NotPending):
        await chain.refund(g.buyer.account, lic)
    with pytest.raises(errors.NotBuyer):
        await chain.dispute_pieces(STRANGER, lic, secret, reveals, delivery.public_key(delivery.new_secret()))


async def test_the_agent_refuses_revoked_or_wrong_purpose_even_if_the_contract_would(
    guarded: Guarded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: a contract that said yes to everything (mayRelease patched to True) still
    gets no piece for a revoked license, nor for a purpose the terms no longer allow."""
    g, chain = guarded, guarded.chain
    lic = await _buy(g)
    sent: list[int] = []

    async def always(license_id: int) -> bool:
        return True

    async def spy(*args: object, **kw: object) -> None:
        sent.append(1)

    monkeypatch.setattr(chain, "may_release", always)
    monkeypatch.setattr(chain, "deliver_key_piece", spy)
    await chain.update_offer(OWNER, g.dataset_id, price=PRICE, terms=INFERENCE_ONLY)  # training no longer allowed
    assert (await chain.get_license(lic)).status == LicenseStatus.PENDING
    await _tick(g.agents[:1])
    assert [d.reason for d in g.agents[0].decisions] == ["the terms do not allow ai_training"]
    await chain.revoke_consent(OWNER, g.dataset_id)
    await _tick(g.agents[1:2])
    assert [d.reason for d in g.agents[1].decisions] == ["consent has been revoked"]
    assert sent == []
