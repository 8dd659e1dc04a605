"""Orders are refused by their cheapest failing check: layout bounds, then signature and nonce, then the chain."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.devchain import DevChain, dev_account
from contracts.models import Dataset, Deal, Share
from erasure import merkle
from storage_node.authorize import DealAuthorizer
from storage_node.client import NodeClient, RemoteError
from storage_node.orders import StorageOrder
from tests.market.conftest import OWNER, encode_sample, register

from .conftest import NodeFactory, publisher
from .test_api import BLOCK, DS, order_for
from .test_deal_orders import give_operator_key

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest.mark.parametrize(
    ("leaf_size", "block_size"),
    [
        (1, 1 << 30),  # one-byte leaves, 1 GiB blocks: a 10-byte read would hash a gibibyte
        (1024, 32 << 20),  # blocks above the pipeline's 16 MiB
        (1, 1024),  # leaves below the minimum
        (1 << 20, 1 << 20),  # leaves above the maximum
        (1000, 3000),  # not leaf times a power of two
        (1024, 0),
        (0, 1024),
        (-1024, 4096),
    ],
)
async def test_unbounded_or_invalid_layouts_are_refused_before_anything(
    make_node: NodeFactory, client: NodeClient, leaf_size: int, block_size: int
) -> None:
    node = await make_node()
    data = os.urandom(BLOCK)
    order = replace(order_for(node, data), leaf_size=leaf_size, block_size=block_size)
    with pytest.raises(RemoteError) as info:
        await client.put_share(node.url, order, publisher(), data)
    assert (info.value.status, info.value.code) == (422, "bad_layout")
    assert node.store is not None
    assert await node.store.records() == []
    await client.put_share(node.url, order_for(node, data), publisher(), data)  # a sane order still goes in
    assert await client.get_share(node.url, DS, 0) == data


class CountingChain:
    """The node's chain view, counting every call that reaches the chain."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.calls: list[str] = []

    async def get_deal(self, deal_id: int) -> Deal:
        self.calls.append("get_deal")
        return await self.chain.get_deal(deal_id)

    async def get_share(self, deal_id: int, share_index: int) -> Share:
        self.calls.append("get_share")
        return await self.chain.get_share(deal_id, share_index)

    async def get_dataset(self, dataset_id: int) -> Dataset:
        self.calls.append("get_dataset")
        return await self.chain.get_dataset(dataset_id)


async def test_forged_orders_are_refused_without_asking_the_chain(make_node: NodeFactory, tmp_path: Path) -> None:
    chain = await DevChain.embedded(dev_accounts=12)
    man, shares, _ = encode_sample(k=2, n=5)
    dataset_id = await register(chain, man)
    providers = [dev_account(i) for i in range(5, 10)]
    for op in providers:
        await chain.register_operator(op, 100 * TOKEN)
    deal = await chain.open_deal(
        OWNER, dataset_id, [p.address for p in providers], epochs=3, fee_per_share_epoch=TOKEN // 10
    )
    give_operator_key(tmp_path / "d0", bytes(providers[0].key))
    counting = CountingChain(chain)
    node = await make_node("d0", authorize=DealAuthorizer(counting, providers[0].address))
    commitment = merkle.MerkleTree(b"".join(man.share_roots), 32)

    def order(**kw: object) -> StorageOrder:
        fields = {
            "node": node.address,
            "dataset": man.hash().hex(),
            "index": 0,
            "share_root": man.share_roots[0],
            "size": man.share_size,
            "leaf_size": man.leaf_size,
            "block_size": man.block_size,
            "deal_id": deal,
            "share_proof": commitment.prove(0).siblings,
            **kw,
        }
        return StorageOrder.new(**fields)  # type: ignore[arg-type]

    async with NodeClient(retries=1) as client:

        async def refused(status: int, code: str, o: StorageOrder, signer: LocalAccount) -> None:
            with pytest.raises(RemoteError) as info:
                await client.put_share(node.url, o, signer, shares[0])
            assert (info.value.status, info.value.code) == (status, code)

        first = order()
        await client.put_share(node.url, first, OWNER, shares[0])  # the deal is read once here
        counting.calls.clear()
        for _ in range(20):  # random keys, the same deal: refused from what the node already knows
            await refused(403, "not_authorized", order(index=1), Account.create())
        await refused(409, "replayed", first, OWNER)  # a replay: the nonce, before the chain
        assert counting.calls == []
        await refused(422, "unknown_deal", order(deal_id=deal + 99), Account.create())
        calls = len(counting.calls)
        for _ in range(5):  # a deal that does not exist is remembered for a while too
            await refused(422, "unknown_deal", order(deal_id=deal + 99), Account.create())
        assert len(counting.calls) == calls
