"""An operator's life on StorageMarket: announce, leave, keep proving, unstake after the exit delay;
leaving never takes stake early nor dodges a slash, and value is conserved through it all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import errors
from contracts.announcements import Announcement
from contracts.chain import Chain
from contracts.connection import TOKEN
from erasure import merkle
from market.chain_directory import OperatorLedger

from .conftest import (
    DEPLOYER,
    ON_EMBEDDED,
    ON_HARDHAT,
    OPERATORS,
    OWNER,
    STAKE,
    STRANGER,
    Published,
    encode_sample,
    register,
)
from .prover_proofs import proof_for

FEE = TOKEN // 10
EPOCHS = 4


async def _register_all(chain: Chain) -> None:
    for op in OPERATORS:
        await chain.register_operator(op, STAKE)


async def _deal(chain: Chain, pub: Published, providers: list[Any], *, accept: bool = True) -> int:
    deal = await chain.open_deal(
        OWNER, pub.dataset_id, [p.address for p in providers], epochs=EPOCHS, fee_per_share_epoch=FEE
    )
    if accept:
        for i, p in enumerate(providers):
            await chain.accept_share(p, deal, i)
    return deal


def _announcement(chain: Chain, op: Any, **kw: Any) -> Announcement:
    return Announcement(operator=op.address, http_url="http://127.0.1.1:7401", chain_id=chain.deployment.chain_id, **kw)


async def test_announce_needs_a_staked_operator_and_is_read_back(chain: Chain) -> None:
    op = OPERATORS[0]
    signed = _announcement(chain, op, ask=7).sign(op)
    with pytest.raises(errors.NotRegistered):
        await chain.announce(op, signed)
    await chain.register_operator(op, STAKE)
    await chain.announce(op, signed)
    newer = _announcement(chain, op, ask=8, issued_at=1).sign(op)
    await chain.announce(op, newer)
    records = await chain.announced()
    assert [r.operator for r in records] == [op.address, op.address]
    assert records[-1].record == newer.to_bytes()
    assert records[0].block <= records[1].block
    assert await chain.announced(operator=STRANGER.address) == []


async def test_announce_refuses_oversized_records(chain: Chain) -> None:
    op = OPERATORS[0]
    await chain.register_operator(op, STAKE)
    fn = chain.storage_market.functions.announce(b"x" * 2049)
    with pytest.raises(errors.AnnouncementTooLong):
        await chain.send(fn, op)
    with pytest.raises(errors.AnnouncementTooLong):
        await chain.send(chain.storage_market.functions.announce(b""), op)


async def test_a_leaving_operator_takes_no_new_deals_shares_or_announcements(
    chain: Chain, published: Published
) -> None:
    await _register_all(chain)
    five = OPERATORS[:5]
    deal = await _deal(chain, published, five, accept=False)
    await chain.accept_share(five[1], deal, 1)
    exit_epoch = await chain.leave(five[0])
    assert exit_epoch == await chain.current_epoch() + await chain.exit_delay_epochs()
    assert (await chain.get_operator(five[0].address)).leaving
    with pytest.raises(errors.OperatorIsLeaving):
        await chain.leave(five[0])
    with pytest.raises(errors.OperatorIsLeaving):
        await chain.open_deal(OWNER, published.dataset_id, [p.address for p in five], epochs=2, fee_per_share_epoch=1)
    with pytest.raises(errors.OperatorIsLeaving):  # a share it was named for before leaving
        await chain.accept_share(five[0], deal, 0)
    with pytest.raises(errors.OperatorIsLeaving):
        await chain.announce(five[0], _announcement(chain, five[0]).sign(five[0]))
    # the owner hands the never-accepted share to another operator; a leaving one is refused
    await chain.leave(five[1])
    with pytest.raises(errors.OperatorIsLeaving):
        await chain.replace_provider(OWNER, deal, 0, five[1].address)
    await chain.replace_provider(OWNER, deal, 0, OPERATORS[5].address)


async def test_unstake_rules(chain: Chain, published: Published) -> None:
    await _register_all(chain)
    op, idle = OPERATORS[0], OPERATORS[6]
    await chain.add_stake(idle, TOKEN)
    await chain.withdraw_stake(idle, TOKEN)  # above the minimum: any time
    with pytest.raises(errors.ExitNotReady):  # below it: only after leave
        await chain.withdraw_stake(idle, STAKE)
    # open the deal and leave in one epoch, whatever block the fixtures left the chain at
    await chain.advance_to_epoch(await chain.current_epoch() + 1)
    deal = await _deal(chain, published, OPERATORS[:5])
    exit_epoch = await chain.leave(op)
    with pytest.raises(errors.StakeLocked):  # still holds an accepted share
        await chain.withdraw_stake(op, STAKE)
    end = (await chain.get_deal(deal)).end_epoch
    proven = range((await chain.current_epoch()) + 1, end)
    for epoch in proven:  # keeps proving while leaving
        await chain.advance_to_epoch(epoch)
        await chain.prove_storage(op, await proof_for(chain, published, deal, 0, epoch))
    await chain.advance_to_epoch(end + 1)
    assert await chain.current_epoch() >= exit_epoch
    with pytest.raises(errors.StakeLocked):  # the deal is over but not settled: its last epoch was reportable
        await chain.withdraw_stake(op, STAKE)
    await chain.settle_deal(STRANGER, deal)
    before = await chain.balance_of(op.address)
    await chain.withdraw_stake(op, STAKE)
    await chain.withdraw(op)  # the fees it earned while leaving
    assert len(proven) == EPOCHS
    assert await chain.balance_of(op.address) == before + STAKE + len(proven) * FEE
    assert (await chain.get_operator(op.address)).stake == 0


async def test_leaving_does_not_escape_a_slash(chain: Chain, published: Published) -> None:
    await _register_all(chain)
    op = OPERATORS[0]
    deal = await _deal(chain, published, OPERATORS[:5])
    start = (await chain.get_deal(deal)).start_epoch
    await chain.advance_to_epoch(start)
    await chain.leave(op)  # then never proves epoch `start`
    await chain.advance_to_epoch(start + 1)
    with pytest.raises(errors.StakeLocked):
        await chain.withdraw_stake(op, STAKE)
    slash = int(await chain.call(chain.storage_market.functions.slashAmount()))
    await chain.report_missed_proof(STRANGER, deal, 0, start)
    state = await chain.get_operator(op.address)
    assert state.stake == STAKE - slash
    assert state.active_shares == 0
    await chain.advance_to_epoch(state.exit_epoch)
    await chain.withdraw_stake(op, state.stake)  # what is left after the slash, nothing more
    with pytest.raises(errors.StakeTooLow):
        await chain.withdraw_stake(op, 1)


async def test_no_one_else_can_leave_unstake_or_announce_for_an_operator(chain: Chain) -> None:
    await _register_all(chain)
    victim = OPERATORS[0]
    with pytest.raises(errors.NotRegistered):
        await chain.leave(STRANGER)  # leave() acts on the sender only
    with pytest.raises(errors.NotRegistered):
        await chain.withdraw_stake(STRANGER, STAKE)
    forged = _announcement(chain, victim)  # the stranger can sign only its own address
    with pytest.raises(errors.NotRegistered):  # and the contract checks the sender, not the record
        await chain.send(chain.storage_market.functions.announce(forged.sign(victim).to_bytes()), STRANGER)
    assert not (await chain.get_operator(victim.address)).leaving
    assert (await chain.get_operator(victim.address)).stake == STAKE


# ------------------------------------------------------------------ value and exit property ----

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            ["leave", "unstake", "prove", "report", "epoch", "settle", "claim", "withdraw", "open", "replace"]
        ),
        st.integers(0, 6),
    ),
    min_size=4,
    max_size=14,
)


@dataclass
class Market:
    chain: Chain
    pub: Published
    spare: Published  # registered, no deal yet
    deal: int


@pytest_asyncio.fixture
async def market(base_chain: Chain) -> AsyncIterator[Market]:
    before = await base_chain.snapshot()
    pubs = []
    for _ in range(2):
        man, shares, key = encode_sample()
        ds = await register(base_chain, man)
        pubs.append(Published(ds, man, shares, key, [merkle.MerkleTree(s, man.leaf_size) for s in shares]))
    await _register_all(base_chain)
    deal = await _deal(base_chain, pubs[0], OPERATORS[:5])
    yield Market(base_chain, pubs[0], pubs[1], deal)
    await base_chain.revert(before)


ACCOUNTS = [OWNER, STRANGER, *OPERATORS]


async def _total(chain: Chain) -> int:
    """Every token there is: wallets of everyone who touches the market, and the market itself."""
    held = sum([await chain.balance_of(a.address) for a in [*ACCOUNTS, DEPLOYER]])
    return held + await chain.balance_of(chain.deployment.storage_market)


async def _owed(chain: Chain, deals: list[int]) -> int:
    owed = sum([(await chain.get_operator(op.address)).stake for op in OPERATORS])
    owed += sum([await chain.storage_balance(a.address) for a in ACCOUNTS])
    owed += int(await chain.call(chain.storage_market.functions.burned()))
    for deal_id in deals:
        d = await chain.get_deal(deal_id)
        if not d.settled:
            owed += d.escrow - d.paid
    return owed


PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@ON_EMBEDDED
@settings(PROPERTY, max_examples=12)
@given(actions=ACTIONS)
async def test_leaving_never_takes_stake_early_and_value_is_conserved(
    market: Market, actions: list[tuple[str, int]]
) -> None:
    await leaving_never_takes_stake_early_and_value_is_conserved(market, actions)


@ON_HARDHAT  # the same on a real node over JSON-RPC, fewer examples
@settings(PROPERTY, max_examples=5)
@given(actions=ACTIONS)
async def test_leaving_never_takes_stake_early_and_value_is_conserved_on_hardhat(
    market: Market, actions: list[tuple[str, int]]
) -> None:
    await leaving_never_takes_stake_early_and_value_is_conserved(market, actions)


async def leaving_never_takes_stake_early_and_value_is_conserved(
    market: Market, actions: list[tuple[str, int]]
) -> None:
    chain, pub = market.chain, market.pub
    snapshot = await chain.snapshot()
    deals = [market.deal]
    total = await _total(chain)
    try:
        for action, arg in actions:
            op = OPERATORS[arg % len(OPERATORS)]
            before = await chain.get_operator(op.address)
            epoch = await chain.current_epoch()
            try:
                if action == "leave":
                    await chain.leave(op)
                    assert not before.leaving
                elif action == "unstake":
                    await chain.withdraw_stake(op, before.stake)
                    # only ever: after leave, its exit delay, and with no live share
                    assert before.leaving
                    assert epoch >= before.exit_epoch
                    assert before.active_shares == 0
                elif action == "prove":
                    share = arg % 5
                    prover = (
                        OPERATORS[share]
                        if (await chain.get_share(market.deal, share)).provider == (OPERATORS[share].address)
                        else OPERATORS[5 + share % 2]
                    )
                    await chain.prove_storage(prover, await proof_for(chain, pub, market.deal, share, epoch))
                elif action == "report":
                    share = await chain.get_share(market.deal, arg % 5)
                    victim = await chain.get_operator(share.provider)
                    await chain.report_missed_proof(STRANGER, market.deal, arg % 5, max(0, epoch - 1))
                    after = await chain.get_operator(share.provider)
                    slash = int(await chain.call(chain.storage_market.functions.slashAmount()))
                    assert after.stake == victim.stake - min(slash, victim.stake)  # leaving or not
                elif action == "epoch":
                    await chain.advance_to_epoch(epoch + 1)
                elif action == "settle":
                    await chain.settle_deal(STRANGER, deals[arg % len(deals)])
                elif action == "claim":
                    await chain.claim_fees(STRANGER, market.deal, arg % 5)
                elif action == "withdraw":
                    await chain.withdraw(ACCOUNTS[arg % len(ACCOUNTS)])
                elif action == "open":
                    providers = [OPERATORS[(arg + i) % len(OPERATORS)] for i in range(5)]
                    states = [await chain.get_operator(p.address) for p in providers]
                    deals.append(await _deal(chain, market.spare, providers, accept=False))
                    assert not any(s.leaving for s in states)
                elif action == "replace":
                    await chain.replace_provider(OWNER, market.deal, arg % 5, OPERATORS[5 + arg % 2].address)
                    assert not before.leaving or op is not OPERATORS[5 + arg % 2]
            except errors.ContractRevert as err:
                if action == "unstake" and before.stake > 0:
                    expected = before.active_shares > 0 or not before.leaving or epoch < before.exit_epoch
                    assert expected, f"unstake refused ({type(err).__name__}) though the exit was ready"  # noqa: PT017
                if action == "open" and isinstance(err, errors.OperatorIsLeaving):
                    assert any([(await chain.get_operator(p.address)).leaving for p in OPERATORS])
        assert await _total(chain) == total
        assert await chain.balance_of(chain.deployment.storage_market) == await _owed(chain, deals)
        ledger = OperatorLedger(chain)  # what clients see, from events alone, is what the contract holds
        await ledger.update(await chain.block_number())
        for op in OPERATORS:
            state = await chain.get_operator(op.address)
            assert (ledger.of(op.address).stake, ledger.of(op.address).leaving) == (state.stake, state.leaving)
    finally:
        await chain.revert(snapshot)
