"""Nodes that accept only orders backed by an on-chain deal (embedded chain, real nodes on loopback)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from contracts.connection import TOKEN
from contracts.devchain import DevChain, dev_account
from erasure import merkle
from storage_node.authorize import DealAuthorizer, collect_ended_deals
from storage_node.client import NodeClient, RemoteError
from storage_node.orders import StorageOrder
from tests.market.conftest import OWNER, STRANGER, encode_sample, register

from .conftest import NodeFactory

pytestmark = pytest.mark.asyncio(loop_scope="function")
PROVIDERS = [dev_account(i) for i in range(5, 10)]


def give_operator_key(home: Path, key: bytes) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "operator.key"
    path.write_text(key.hex() + "\n")
    path.chmod(0o600)


async def test_orders_are_checked_against_the_deal(make_node: NodeFactory, tmp_path: Path) -> None:
    chain = await DevChain.embedded(dev_accounts=12)
    man, shares, _ = encode_sample(k=2, n=5)
    dataset_id = await register(chain, man)
    for op in PROVIDERS:
        await chain.register_operator(op, 100 * TOKEN)
    deal = await chain.open_deal(
        OWNER, dataset_id, [p.address for p in PROVIDERS], epochs=3, fee_per_share_epoch=TOKEN // 10
    )
    nodes = []
    for i, op in enumerate(PROVIDERS[:2]):
        give_operator_key(tmp_path / f"d{i}", bytes(op.key))
        nodes.append(await make_node(f"d{i}", authorize=DealAuthorizer(chain, op.address)))
    commitment = merkle.MerkleTree(b"".join(man.share_roots), 32)
    dataset = man.hash().hex()

    def order(node_i: int, share_i: int, **kw: object) -> StorageOrder:
        fields = {
            "node": nodes[node_i].address,
            "dataset": dataset,
            "index": share_i,
            "share_root": man.share_roots[share_i],
            "size": man.share_size,
            "leaf_size": man.leaf_size,
            "block_size": man.block_size,
            "deal_id": deal,
            "share_proof": commitment.prove(share_i).siblings,
            **kw,
        }
        return StorageOrder.new(**fields)  # type: ignore[arg-type]

    async with NodeClient() as client:

        async def refused(status: int, code: str, o: StorageOrder, signer: object = OWNER) -> None:
            with pytest.raises(RemoteError) as info:
                await client.put_share(nodes[0].url, o, signer, shares[o.index])  # type: ignore[arg-type]
            assert (info.value.status, info.value.code) == (status, code)

        await refused(403, "not_authorized", order(0, 0), STRANGER)
        await refused(422, "unknown_deal", order(0, 0, deal_id=deal + 1))
        await refused(422, "wrong_root", order(0, 0, share_root=man.share_roots[1]))
        await refused(403, "wrong_node", order(0, 1))  # share 1 is assigned to the other node
        await refused(422, "unknown_deal", order(0, 0, dataset=os.urandom(32).hex()))
        for i, node in enumerate(nodes):
            await client.put_share(node.url, order(i, i), OWNER, shares[i])
            assert await client.get_share(node.url, dataset, i) == shares[i]

    # the deal ends: nodes drop what they held for it, and nothing else
    store = nodes[0].store
    assert store is not None
    assert await collect_ended_deals(store, chain) == 0
    await chain.terminate_deal(OWNER, deal)
    await chain.advance_to_epoch((await chain.get_deal(deal)).end_epoch)
    assert await collect_ended_deals(store, chain) == 1
    assert await store.records() == []


async def test_an_order_paying_less_than_the_nodes_ask_is_refused(make_node: NodeFactory, tmp_path: Path) -> None:
    chain = await DevChain.embedded(dev_accounts=12)
    man, shares, _ = encode_sample(k=2, n=5)
    dataset_id = await register(chain, man)
    for op in PROVIDERS:
        await chain.register_operator(op, 100 * TOKEN)
    fee = 1000
    deal = await chain.open_deal(OWNER, dataset_id, [p.address for p in PROVIDERS], epochs=3, fee_per_share_epoch=fee)
    # asks per GiB per epoch: just above and exactly what this deal pays for a share of this size
    exact = fee * (1 << 30) // man.share_size
    greedy, fair = PROVIDERS[0], PROVIDERS[1]
    give_operator_key(tmp_path / "greedy", bytes(greedy.key))
    give_operator_key(tmp_path / "fair", bytes(fair.key))
    nodes = [
        await make_node("greedy", authorize=DealAuthorizer(chain, greedy.address, ask=exact + (1 << 30))),
        await make_node("fair", authorize=DealAuthorizer(chain, fair.address, ask=exact)),
    ]
    commitment = merkle.MerkleTree(b"".join(man.share_roots), 32)
    async with NodeClient() as client:
        for i, node in enumerate(nodes):
            o = StorageOrder.new(
                node=node.address,
                dataset=man.hash().hex(),
                index=i,
                share_root=man.share_roots[i],
                size=man.share_size,
                leaf_size=man.leaf_size,
                block_size=man.block_size,
                deal_id=deal,
                share_proof=commitment.prove(i).siblings,
            )
            if i == 0:
                with pytest.raises(RemoteError) as info:
                    await client.put_share(node.url, o, OWNER, shares[i])
                assert (info.value.status, info.value.code) == (402, "below_ask")
                assert "ask" in str(info.value)
            else:
                await client.put_share(node.url, o, OWNER, shares[i])
    assert nodes[0].store is not None
    assert await nodes[0].store.records() == []  # nothing stored
    await chain.close()
