"""The demo's pool story: three contributors pool their data, a curator accepts them with weights,
a lab buys the pool once (the payment split on-chain by weight), one contributor withdraws, and the
next sale excludes it (its key is not released to that license)."""

from __future__ import annotations

from pathlib import Path

from contracts import errors
from contracts.connection import TOKEN
from contracts.devchain import dev_account
from contracts.terms import TRAINING_ALLOWED, Purpose
from erasure.pipeline import Layout
from market import pools, publisher
from market.keystore import Keystore
from market.placement import PlacementPolicy
from storage_node.client import NodeClient

from .demo_join import PROBE_TIMEOUT
from .devnet import LocalNetwork

POOL_PRICE = 12 * TOKEN
CURATOR_FEE_BPS = 1_000  # 10%
WEIGHTS = (1, 2, 3)


async def pool_story(net: LocalNetwork, lab: Keystore, workdir: Path, sample: Path) -> str:
    """Run the story; returns the split and the exclusion in one line. Raises if any step misbehaves."""
    chain = net.chain
    curator = Keystore.create(workdir / "curator", b"demo curator passphrase", account=dev_account(4))
    contributors = [
        Keystore.create(workdir / f"contributor-{i}", b"demo contributor passphrase", account=dev_account(5 + i))
        for i in range(3)
    ]
    pool = await pools.create(
        chain, curator, terms=TRAINING_ALLOWED, price=POOL_PRICE, curator_fee_bps=CURATOR_FEE_BPS, rules="text corpora"
    )
    ids = []
    async with NodeClient() as client:
        for store in contributors:
            pub = await publisher.publish(
                sample,
                chain=chain,
                keystore=store,
                directory=net.directory,
                client=client,
                staging=store.path.parent / "staging",
                options=publisher.PublishOptions(
                    layout=Layout(k=2, n=4),
                    price=TOKEN,
                    terms=TRAINING_ALLOWED,
                    epochs=50,
                    fee_per_share_epoch=0,
                    placement=PlacementPolicy(probe_timeout=PROBE_TIMEOUT),
                ),
            )
            ids.append(await pools.contribute(chain, store, pool, pub.dataset_id))
    for cid, weight in zip(ids, WEIGHTS, strict=True):
        await chain.accept_contribution(curator.account, cid, weight)
    first = await pools.buy(chain, lab, pool, Purpose.AI_TRAINING)
    if {r.outcome for r in await pools.release(chain, curator, first)} != {"delivered"}:
        raise errors.ChainError("the pool's key release did not deliver every contribution")
    split = [await chain.earned(cid) for cid in ids]
    fee = (await chain.get_pool(pool)).curator_owed
    await chain.withdraw_contribution(contributors[0].account, ids[0])
    second = await pools.buy(chain, lab, pool, Purpose.AI_TRAINING)
    released = {r.contribution_id: r.outcome for r in await pools.release(chain, curator, second)}
    if ids[0] in released or await chain.covers(second, ids[0]):
        raise errors.ChainError("a withdrawn contribution was part of a later license")
    after = [await chain.earned(cid) for cid in ids]
    shown = ", ".join(f"#{cid} (weight {w}) {t / TOKEN:.2f}" for cid, w, t in zip(ids, WEIGHTS, split, strict=True))
    return (
        f"pool {pool}: sale 1 paid curator {fee / TOKEN:.2f} and {shown} tokens; #{ids[0]} withdrew: "
        f"sale 2 licensed {len(released)} contributions and paid it nothing more ({after[0] == split[0]})"
    )
