"""Gas of a data-pool sale and claim at 3 and at 1,000 contributions (part of ``python -m bench.gas``).

Each contribution is an ordinary registered dataset of its contributor, contributed to the pool and
accepted by the curator at its default weight (its size). To fill a pool with 1,000 of them in a
few transactions, the curator and the contributor are two ``PoolFiller`` contracts
(``contracts/src/test``) making the ordinary DatasetRegistry and DataPools calls in a loop. The
purchase records a snapshot (the pool's epoch) and adds the sale to the revenue-per-weight
accumulator, and a claim settles one contribution: neither looks at the other contributions, so
both figures should not move with the pool's size (the ratio printed is 1,000 over 3).
"""

from __future__ import annotations

from typing import Any

import contracts
from contracts import delivery
from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.devchain import dev_account
from contracts.terms import TRAINING_ALLOWED, Purpose

SIZES = (3, 1000)
BATCH = 50  # contributions per filler transaction (each about 400k gas)


async def _filler(chain: Chain) -> Any:
    address = await chain.tx.create("PoolFiller", dev_account(0))
    return chain.w3.eth.contract(address=address, abi=contracts.load("PoolFiller").abi)


async def pool_gas(chain: Chain) -> dict[str, int]:
    """``gas_pool_purchase_<n>`` and ``gas_pool_claim_<n>`` for each pool size in SIZES."""
    out: dict[str, int] = {}
    sender, buyer = dev_account(3), dev_account(4)
    curator, contributor = await _filler(chain), await _filler(chain)
    key = delivery.check_point(delivery.public_key(delivery.new_secret()))
    lab = delivery.check_point(delivery.public_key(delivery.new_secret()))
    token = chain.deployment.token
    price = 5 * TOKEN + 1
    await chain.approve(buyer, chain.deployment.data_pools, 10**24)
    for n in SIZES:
        fn = curator.functions.createPool(
            chain.deployment.data_pools, TRAINING_ALLOWED.to_abi(), price, 500, token, key
        )
        await chain.send(fn, sender)
        pool = await chain.pool_count()
        first = int(await chain.call(chain.pools.functions.contributionCount())) + 1
        for start in range(0, n, BATCH):
            count = min(BATCH, n - start)
            fn = contributor.functions.fill(
                chain.deployment.data_pools,
                chain.deployment.registry,
                pool,
                count,
                TRAINING_ALLOWED.to_abi(),
                token,
                key,
            )
            await chain.send(fn, sender)
            await chain.send(curator.functions.acceptRange(chain.deployment.data_pools, first + start, count), sender)
        assert (await chain.get_pool(pool)).members == n
        fn = chain.pools.functions.purchase(pool, int(Purpose.AI_TRAINING), lab, price, token)
        await chain.send(fn, buyer)  # the first sale of a pool writes its accumulator fresh: measure the second
        out[f"gas_pool_purchase_{n}"] = int((await chain.send(fn, buyer))["gasUsed"])
        receipt = await chain.send(chain.pools.functions.claim(first + n // 2), sender)
        out[f"gas_pool_claim_{n}"] = int(receipt["gasUsed"])
    return out
