"""A draft deal's escrow allowance by EIP-2612 permit (``openDraftDealWithPermit``): one transaction
instead of ``approve`` + ``openDraftDeal``, and no hostile party takes what is not theirs: another
account's permit opens nothing at its cost, a front-run permit is harmless, a replayed, expired or
short permit pulls nothing."""

from __future__ import annotations

import pytest

from contracts import errors
from contracts.chain import Chain
from contracts.connection import TOKEN

from .conftest import OPERATORS, OWNER, STAKE, STRANGER, Published

FEE = TOKEN // 10
EPOCHS = 5
N = 5


async def _setup(chain: Chain, pub: Published) -> tuple[tuple[object, ...], int]:
    for op in OPERATORS[:N]:
        await chain.register_operator(op, STAKE)
    m = pub.manifest
    args = (m.share_size, m.leaf_size, m.k, [op.address for op in OPERATORS[:N]], EPOCHS, FEE)
    return args, N * EPOCHS * FEE


async def _nonce(chain: Chain, address: str) -> int:
    return int(await chain.w3.eth.get_transaction_count(address))


async def test_a_draft_with_a_permit_is_one_transaction_pulling_exactly_the_escrow(
    chain: Chain, published: Published
) -> None:
    args, escrow = await _setup(chain, published)
    before, sent = await chain.balance_of(OWNER.address), await _nonce(chain, OWNER.address)
    m = published.manifest
    deal = await chain.open_draft_deal(
        OWNER,
        share_size=m.share_size,
        leaf_size=m.leaf_size,
        k=m.k,
        providers=args[3],  # type: ignore[arg-type]
        epochs=EPOCHS,
        fee_per_share_epoch=FEE,
    )
    assert await _nonce(chain, OWNER.address) == sent + 1  # no separate approve
    assert (await chain.get_deal(deal)).escrow == escrow
    assert await chain.balance_of(OWNER.address) == before - escrow
    market = chain.deployment.storage_market
    assert await chain.call(chain.token.functions.allowance(OWNER.address, market)) == 0  # nothing left over


async def test_a_permit_signed_by_another_account_opens_nothing_at_its_cost(chain: Chain, published: Published) -> None:
    args, escrow = await _setup(chain, published)
    permit = await chain.escrow_permit(OWNER, escrow)
    assert permit is not None
    owner_before, stranger_before = await chain.balance_of(OWNER.address), await chain.balance_of(STRANGER.address)
    deals_before = await chain.call(chain.storage_market.functions.dealCount())
    with pytest.raises(errors.ContractRevert):  # the permit names the owner; the escrow comes from the sender
        await chain.send(chain.storage_market.functions.openDraftDealWithPermit(*args, *permit), STRANGER)
    assert await chain.balance_of(OWNER.address) == owner_before
    assert await chain.balance_of(STRANGER.address) == stranger_before
    assert await chain.call(chain.storage_market.functions.dealCount()) == deals_before


async def test_a_front_run_permit_is_harmless_and_a_replay_pulls_nothing(chain: Chain, published: Published) -> None:
    args, escrow = await _setup(chain, published)
    market = chain.deployment.storage_market
    deadline, v, r, s = permit = await chain.escrow_permit(OWNER, escrow) or pytest.fail("no permit")
    # someone submits the owner's permit first: the market may pull from the owner, but only for the owner
    await chain.send(chain.token.functions.permit(OWNER.address, market, escrow, deadline, v, r, s), STRANGER)
    with pytest.raises(errors.ContractRevert):  # the stranger's own draft pulls from the stranger
        await chain.send(chain.storage_market.functions.openDraftDeal(*args), STRANGER)
    before = await chain.balance_of(OWNER.address)
    fn = chain.storage_market.functions.openDraftDealWithPermit(*args, *permit)
    await chain.send(fn, OWNER)  # the used permit fails inside, the allowance it granted is there
    assert await chain.balance_of(OWNER.address) == before - escrow
    with pytest.raises(errors.ContractRevert):  # replayed: its nonce is spent, no allowance is left
        await chain.send(chain.storage_market.functions.openDraftDealWithPermit(*args, *permit), OWNER)
    assert await chain.balance_of(OWNER.address) == before - escrow


async def test_an_expired_or_short_permit_pulls_nothing(chain: Chain, published: Published) -> None:
    args, escrow = await _setup(chain, published)
    before = await chain.balance_of(OWNER.address)
    expired = await chain.escrow_permit(OWNER, escrow, valid_for=-1)
    short = await chain.escrow_permit(OWNER, escrow - 1)
    for permit in (expired, short):
        assert permit is not None
        with pytest.raises(errors.ContractRevert):
            await chain.send(chain.storage_market.functions.openDraftDealWithPermit(*args, *permit), OWNER)
    assert await chain.balance_of(OWNER.address) == before
