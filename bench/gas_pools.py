"""Gas of a data-pool sale and claim at 3 and at 1,000 contributions (part of ``python -m bench.gas``).

Each contribution is an ordinary registered dataset of its contributor, contributed with its data key
sealed to the pool's key release and accepted by the curator at its default weight (its size). The
purchase records a snapshot (the pool's epoch) and adds the sale to the revenue-per-weight
accumulator, and a claim settles one contribution: neither looks at the other contributions, so
both figures should not move with the pool's size (the ratio printed is 1,000 over 3).
"""

from __future__ import annotations

import os

from contracts import delivery
from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.devchain import dev_account
from contracts.terms import TRAINING_ALLOWED, Purpose
from erasure import envelope

SIZES = (3, 1000)


async def _contribution(chain: Chain, pool: int, release_key: bytes) -> int:
    contributor = dev_account(1 + os.urandom(1)[0] % 2)  # two contributors, many datasets each
    dataset = await chain.register_dataset(
        contributor,
        manifest_hash=os.urandom(32),
        commitment_root=os.urandom(32),
        key_commitment=os.urandom(32),
        key_salt=os.urandom(32),
        plaintext_size=1 << 20,
        share_size=1 << 19,
        leaf_size=1024,
        k=2,
        n=4,
        price=TOKEN,
        terms=TRAINING_ALLOWED,
    )
    cid = await chain.contribute(contributor, pool, dataset, envelope.new_data_key())
    await chain.accept_contribution(dev_account(3), cid)
    return cid


async def pool_gas(chain: Chain) -> dict[str, int]:
    """``gas_pool_purchase_<n>`` and ``gas_pool_claim_<n>`` for each pool size in SIZES."""
    out: dict[str, int] = {}
    curator, buyer = dev_account(3), dev_account(4)
    release_key = delivery.public_key(delivery.new_secret())
    lab = delivery.check_point(delivery.public_key(delivery.new_secret()))
    await chain.approve(buyer, chain.deployment.data_pools, 10**24)
    for n in SIZES:
        pool = await chain.create_pool(
            curator,
            terms=TRAINING_ALLOWED,
            price=5 * TOKEN + 1,
            curator_fee_bps=500,
            rules="bench",
            agent_key=release_key,
        )
        ids = [await _contribution(chain, pool, release_key) for _ in range(n)]
        fn = chain.pools.functions.purchase(pool, int(Purpose.AI_TRAINING), lab, 5 * TOKEN + 1, chain.deployment.token)
        await chain.send(fn, buyer)  # the first sale of a pool writes its accumulator fresh: measure the second
        out[f"gas_pool_purchase_{n}"] = int((await chain.send(fn, buyer))["gasUsed"])
        receipt = await chain.send(chain.pools.functions.claim(ids[n // 2]), curator)
        out[f"gas_pool_claim_{n}"] = int(receipt["gasUsed"])
    return out
