"""market.pools: the curator's release, the lab's keys and the consent receipt, with real keystores."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.chain import Chain
from contracts.terms import TRAINING_ALLOWED, Purpose
from market import pools
from market.keystore import Keystore

from .conftest import BUYER
from .pool_support import CURATOR, three_datasets


async def test_a_pool_sale_releases_each_covered_key_and_the_receipt_lists_every_contribution(
    chain: Chain, tmp_path: Path
) -> None:
    datasets = await three_datasets(chain)
    curator = Keystore.create(tmp_path / "curator", b"pw", account=CURATOR)
    lab = Keystore.create(tmp_path / "lab", b"pw", account=BUYER)
    stores = []
    for d in datasets:
        store = Keystore.create(tmp_path / f"c{d.dataset_id}", b"pw", account=d.contributor)
        store.add_dataset(b"m%d" % d.dataset_id, d.key, dataset_id=d.dataset_id)
        stores.append(store)
    pool = await pools.create(
        chain, curator, terms=TRAINING_ALLOWED, price=10**18, curator_fee_bps=500, rules="text, one folder each"
    )
    ids = [await pools.contribute(chain, s, pool, d.dataset_id) for s, d in zip(stores, datasets, strict=True)]
    for cid in ids:
        await chain.accept_contribution(CURATOR, cid)
    first = await pools.buy(chain, lab, pool, Purpose.AI_TRAINING)
    await chain.withdraw_contribution(datasets[0].contributor, ids[0])
    second = await pools.buy(chain, lab, pool, Purpose.AI_TRAINING)

    decided = await pools.release(chain, curator, second)
    assert [(r.contribution_id, r.outcome) for r in decided] == [(ids[1], "delivered"), (ids[2], "delivered")]
    assert [c.contribution_id for c in await pools.covered(chain, second)] == ids[1:]
    for cid, d in zip(ids[1:], datasets[1:], strict=True):
        assert await pools.contribution_key(chain, lab, second, cid) == d.key
    again = await pools.release(chain, curator, second)
    assert {r.outcome for r in again} == {"already delivered"}

    earlier = await pools.release(chain, curator, first)  # revocable terms: the withdrawn one is refused
    assert (ids[0], "refused") in [(r.contribution_id, r.outcome) for r in earlier]
    with pytest.raises(pools.PoolError):
        await pools.contribution_key(chain, lab, first, ids[0])

    receipt = await pools.receipt(chain, first)
    rows = {r["contribution_id"]: r for r in receipt["contributions"]}
    assert sorted(rows) == ids  # bought before the withdrawal: all three were in its snapshot
    assert rows[ids[0]]["covered"] is False
    assert rows[ids[0]]["consent_standing"] is False
    assert rows[ids[2]]["weight"] == str(datasets[2].size)
    dataset = await chain.get_dataset(datasets[1].dataset_id)
    assert rows[ids[1]]["commitment_root"] == "0x" + dataset.commitment_root.hex()
    assert rows[ids[1]]["contributor"] == datasets[1].contributor.address
    assert [r["contribution_id"] for r in (await pools.receipt(chain, second))["contributions"]] == ids[1:]
