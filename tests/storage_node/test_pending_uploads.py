"""Pending uploads of draft deals (streaming publish), on an embedded chain with real nodes on loopback.

Hostile publishers: a node holds nothing the draft deal does not assign it (size, share, owner),
refuses more bytes than assigned with a 4xx and keeps serving others, never serves, proves or
accepts a pending share, activates one only against the root committed on-chain, and deletes what
is not activated within its hold."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from contracts.connection import TOKEN
from contracts.devchain import DevChain
from erasure import merkle
from storage_node.authorize import DealAuthorizer
from storage_node.client import NodeClient, RemoteError
from storage_node.node import StorageNode
from storage_node.orders import PendingOrder, StorageOrder
from storage_node.prover import Prover
from tests.market.conftest import OWNER, STRANGER, encode_sample, register

from .conftest import NodeFactory
from .test_deal_orders import PROVIDERS, give_operator_key

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_pending_shares_are_bounded_by_the_draft_deal_and_activated_only_against_its_root(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    chain = await DevChain.embedded(dev_accounts=12)
    man, shares, _ = encode_sample(k=2, n=5)
    for op in PROVIDERS:
        await chain.register_operator(op, 100 * TOKEN)
    deal = await chain.open_draft_deal(
        OWNER,
        share_size=man.share_size,
        leaf_size=man.leaf_size,
        k=man.k,
        providers=[p.address for p in PROVIDERS],
        epochs=3,
        fee_per_share_epoch=TOKEN // 10,
    )
    nodes: list[StorageNode] = []
    for i, op in enumerate(PROVIDERS[:2]):
        give_operator_key(tmp_path / f"p{i}", bytes(op.key))
        nodes.append(await make_node(f"p{i}", authorize=DealAuthorizer(chain, op.address)))
    node, store = nodes[0], nodes[0].store
    assert store is not None
    free_before = await store.free()

    def pending(share_i: int = 0, **kw: object) -> PendingOrder:
        fields = {
            "node": node.address,
            "deal_id": deal,
            "index": share_i,
            "size": man.share_size,
            "leaf_size": man.leaf_size,
            "block_size": man.block_size,
            **kw,
        }
        return PendingOrder.new(**fields)  # type: ignore[arg-type]

    commitment = merkle.MerkleTree(b"".join(man.share_roots), 32)

    def order(share_i: int = 0, **kw: object) -> StorageOrder:
        fields = {
            "node": node.address,
            "dataset": man.hash().hex(),
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

    async with NodeClient(retries=1) as client:

        async def refused(status: int, code: str, o: PendingOrder, body: bytes, signer: object = OWNER) -> None:
            with pytest.raises(RemoteError) as info:
                await client.put_pending(node.url, o, signer, body)  # type: ignore[arg-type]
            assert (info.value.status, info.value.code) == (status, code)

        # what the draft does not assign is refused before a byte is stored
        await refused(403, "not_authorized", pending(), shares[0], STRANGER)
        await refused(403, "wrong_node", pending(1), shares[1])  # share 1 is the other node's
        await refused(422, "unknown_deal", pending(size=man.share_size + 1), shares[0] + b"x")
        await refused(422, "unknown_deal", pending(deal_id=deal + 1), shares[0])
        # more bytes than the order (and the deal) assign: a 4xx, nothing kept
        headers = {**pending().headers(OWNER), "Content-Type": "application/octet-stream"}
        async with client.session.put(
            f"{node.url}/v1/pending/{deal}/0", data=shares[0] + b"extra", headers=headers
        ) as r:
            assert 400 <= r.status < 500
        assert store.held == {}
        assert await store.free() == free_before

        assert (await client.health(node.url))["status"] == "ok"  # and it keeps serving: the upload below

        # the assigned share: held pending, never served, proven or accepted
        answer = await client.put_pending(node.url, pending(), OWNER, shares[0])
        assert answer["state"] == "pending"
        assert bytes.fromhex(answer["root"]) == man.share_roots[0]
        assert await store.free() == free_before - man.share_size  # it takes its reserved space
        await refused(409, "share_exists", pending(), shares[0])  # once
        assert await store.records() == []
        with pytest.raises(RemoteError) as info:
            await client.get_share(node.url, man.hash().hex(), 0)
        assert info.value.status == 404
        prover = Prover(chain, PROVIDERS[0], store)
        assert await prover.accept_new() == 0

        # activation waits for the root on-chain, and must name the root the node computed
        with pytest.raises(RemoteError) as info:
            await client.activate(node.url, order(), OWNER)
        assert (info.value.status, info.value.code) == (409, "deal_not_committed")
        dataset_id = await register(chain, man)
        await chain.commit_deal(OWNER, deal, dataset_id)
        with pytest.raises(RemoteError) as info:  # a root that is not the committed one
            await client.activate(node.url, order(share_root=man.share_roots[1]), OWNER)
        assert info.value.code == "wrong_root"
        with pytest.raises(RemoteError) as info:  # not the owner
            await client.activate(node.url, order(), STRANGER)
        assert info.value.code == "not_authorized"
        other, _, _ = encode_sample(size=30_000, k=2, n=5)
        for wrong in (b"not a manifest", other.canonical_bytes()):  # with a manifest not the dataset's
            with pytest.raises(RemoteError) as info:
                await client.activate(node.url, order(), OWNER, manifest=wrong)
            assert (info.value.status, info.value.code) == (422, "bad_manifest")
        assert (deal, 0) in store.held  # refused before anything changed
        await client.activate(node.url, order(), OWNER, manifest=man.canonical_bytes())  # one request
        assert await client.get_share(node.url, man.hash().hex(), 0) == shares[0]
        assert await client.get_manifest(node.url, man.hash().hex()) == man.canonical_bytes()
        assert store.held == {}
        assert await store.free() == free_before - man.share_size
        assert await prover.accept_new() == 1  # now it is a share like any other
        with pytest.raises(RemoteError) as info:  # a second activation finds nothing pending
            await client.activate(node.url, order(), OWNER)
        assert (info.value.status, info.value.code) == (404, "not_pending")


async def test_pending_shares_not_activated_in_time_are_collected(make_node: NodeFactory, tmp_path: Path) -> None:
    node = await make_node("gc")
    store = node.store
    assert store is not None
    man, shares, _ = encode_sample(k=2, n=5)
    free_before = await store.free()
    async with NodeClient(retries=1) as client:
        for i in (0, 1):
            o = PendingOrder.new(
                node=node.address,
                deal_id=7,
                index=i,
                size=man.share_size,
                leaf_size=man.leaf_size,
                block_size=man.block_size,
            )
            await client.put_pending(node.url, o, OWNER, shares[i])
    assert len(store.held) == 2
    assert await store.free() == free_before - 2 * man.share_size
    assert await store.collect_garbage() == 0  # within the hold: kept
    assert await store.collect_garbage(time.time() + store.pending_hold + 1) == 2
    assert store.held == {}
    assert await store.free() == free_before
    assert not list(store.pending_dir.iterdir())


async def test_a_restart_drops_pending_shares(make_node: NodeFactory, tmp_path: Path) -> None:
    node = await make_node("restart")
    store = node.store
    assert store is not None
    man, shares, _ = encode_sample(k=2, n=5)
    o = PendingOrder.new(
        node=node.address, deal_id=3, index=0, size=man.share_size, leaf_size=man.leaf_size, block_size=man.block_size
    )
    async with NodeClient(retries=1) as client:
        await client.put_pending(node.url, o, OWNER, shares[0])
    report = await asyncio.to_thread(store.recover)
    assert report["pending_dropped"] == 1
    assert store.held == {}
    assert not store.pending_dir.exists()


async def test_a_chunked_pending_upload_is_refused(make_node: NodeFactory) -> None:
    node = await make_node("chunked")
    man, shares, _ = encode_sample(k=2, n=5)
    o = PendingOrder.new(
        node=node.address, deal_id=3, index=0, size=man.share_size, leaf_size=man.leaf_size, block_size=man.block_size
    )

    async def body() -> object:
        yield shares[0]

    url = f"{node.url}/v1/pending/3/0"
    async with aiohttp.ClientSession() as session, session.put(url, data=body(), headers=o.headers(OWNER)) as resp:
        assert resp.status == 411  # no Content-Length, no upload
