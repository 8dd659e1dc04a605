"""isServable / healthyShares: a dataset is servable iff its open deal holds at least k accepted, healthy shares."""

from __future__ import annotations

from contracts.chain import Chain

from .conftest import OPERATORS, OWNER, STRANGER, Published
from .test_storage_market import open_deal, proof_for


async def test_servable_follows_accepts_faults_repairs_and_the_deal_end(chain: Chain, published: Published) -> None:
    ds = published.dataset_id
    assert not await chain.is_servable(ds)  # no deal yet
    deal = await open_deal(chain, published, accept=False)
    assert not await chain.is_servable(ds)  # k = 2, nothing accepted
    await chain.accept_share(OPERATORS[0], deal, 0)
    assert await chain.healthy_shares(deal) == 1
    assert not await chain.is_servable(ds)
    await chain.accept_share(OPERATORS[1], deal, 1)
    assert await chain.is_servable(ds)
    for i in (2, 3, 4):
        await chain.accept_share(OPERATORS[i], deal, i)
    assert await chain.healthy_shares(deal) == 5

    d = await chain.get_deal(deal)
    epoch = d.start_epoch
    await chain.advance_to_epoch(epoch)
    for i in (0, 1):  # shares 2, 3, 4 stay silent
        await chain.prove_storage(OPERATORS[i], await proof_for(chain, published, deal, i, epoch))
    await chain.advance_to_epoch(epoch + 1)
    for i in (2, 3, 4):
        await chain.report_missed_proof(STRANGER, deal, i, epoch)
    assert await chain.healthy_shares(deal) == 2
    assert await chain.is_servable(ds)
    await chain.prove_storage(OPERATORS[0], await proof_for(chain, published, deal, 0, epoch + 1))
    await chain.advance_to_epoch(epoch + 2)
    await chain.report_missed_proof(STRANGER, deal, 1, epoch + 1)
    assert await chain.healthy_shares(deal) == 1
    assert not await chain.is_servable(ds)  # one healthy share left, k = 2

    await chain.replace_provider(OWNER, deal, 1, OPERATORS[5].address)
    assert not await chain.is_servable(ds)  # replaced, not yet accepted
    await chain.accept_share(OPERATORS[5], deal, 1)
    assert await chain.healthy_shares(deal) == 2
    assert await chain.is_servable(ds)

    await chain.terminate_deal(OWNER, deal)
    end = (await chain.get_deal(deal)).end_epoch
    await chain.advance_to_epoch(end)
    assert not await chain.is_servable(ds)
    await chain.advance_to_epoch(end + 1)
    await chain.settle_deal(STRANGER, deal)
    assert not await chain.is_servable(ds)
    assert await chain.healthy_shares(deal) == 0


async def test_servable_ends_with_the_deal(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published)
    assert await chain.is_servable(published.dataset_id)
    await chain.advance_to_epoch((await chain.get_deal(deal)).end_epoch)
    assert not await chain.is_servable(published.dataset_id)


async def test_a_new_deal_does_not_hide_a_healthy_older_one(chain: Chain, published: Published) -> None:
    await open_deal(chain, published)
    providers = [op.address for op in OPERATORS[:5]]
    await chain.open_deal(OWNER, published.dataset_id, providers, epochs=3, fee_per_share_epoch=1)
    assert await chain.is_servable(published.dataset_id)  # the renewal's shares are not accepted yet
