"""Authorising storage orders against on-chain deals (the node's ``Authorizer`` with a chain).

An order is accepted only if its deal exists and is open, the signer owns it, this node is the
share's assigned provider, the dataset and sizes match the registered dataset, and the declared
share root is provably part of the deal's commitment root (the order carries the Merkle path).
:class:`DeletionGuard` honours an owner's delete order only for a share the chain no longer asks
this node to prove; :func:`collect_ended_deals` deletes what a node holds for deals that are over.
"""

from __future__ import annotations

from erasure import merkle
from market import errors as market_errors
from market.chain import Chain

from .errors import NotAuthorized, StillOwed, UnknownDeal, WrongNode, WrongRoot
from .orders import StorageOrder
from .store.index import ShareRecord
from .store.shards import ShardStore


class DealAuthorizer:
    def __init__(self, chain: Chain, node_address: str) -> None:
        self.chain = chain
        self.node_address = node_address

    async def __call__(self, signer: str, order: StorageOrder) -> None:
        try:
            deal = await self.chain.get_deal(order.deal_id)
            share = await self.chain.get_share(order.deal_id, order.index)
            dataset = await self.chain.get_dataset(deal.dataset_id)
        except market_errors.NotFound as err:
            raise UnknownDeal(f"deal {order.deal_id} share {order.index} is not on-chain") from err
        if deal.settled:
            raise UnknownDeal(f"deal {order.deal_id} is settled")
        if signer.lower() != deal.owner.lower():
            raise NotAuthorized(f"{signer} does not own deal {order.deal_id}")
        if share.provider.lower() != self.node_address.lower():
            raise WrongNode(f"share {order.index} of deal {order.deal_id} is assigned to {share.provider}")
        if order.dataset != dataset.manifest_hash.hex():
            raise UnknownDeal("the order's dataset is not the deal's dataset")
        if (order.size, order.leaf_size) != (dataset.share_size, dataset.leaf_size):
            raise UnknownDeal("share size or leaf size differ from the registered dataset")
        proof = merkle.MerkleProof(order.index, deal.n, tuple(bytes.fromhex(h) for h in order.share_proof))
        root = merkle.root_from_proof(merkle.leaf_hash(bytes.fromhex(order.share_root)), proof)
        if root != deal.commitment_root:
            raise WrongRoot("the share root is not part of the deal's commitment root")


class DeletionGuard:
    """Refuses to delete a share that is due in the current or a later epoch (StillOwed).

    Deleting it would get this node slashed at the next missed proof, whoever signed the order:
    the owner must terminate the deal first (``terminateDeal`` owes nothing from the current
    epoch on). A share is free to go once its deal is settled or past its last epoch, or it is no
    longer this node's (replaced) or already faulty; a share stored without a deal owes nothing.
    """

    def __init__(self, chain: Chain, node_address: str) -> None:
        self.chain = chain
        self.node_address = node_address

    async def __call__(self, record: ShareRecord) -> None:
        if not record.deal_id:
            return
        try:
            deal = await self.chain.get_deal(record.deal_id)
            share = await self.chain.get_share(record.deal_id, record.idx)
        except market_errors.NotFound:
            return  # no such deal on-chain: nothing is owed for it
        if deal.settled or share.faulty or share.provider.lower() != self.node_address.lower():
            return
        epoch = await self.chain.current_epoch()
        first = max(epoch, share.active_from or deal.start_epoch)
        if first < deal.end_epoch:
            raise StillOwed(
                f"share {record.idx} of deal {record.deal_id} is still owed until epoch {deal.end_epoch}"
                " (the owner must terminate the deal before ordering its deletion)"
            )


async def collect_ended_deals(store: ShardStore, chain: Chain) -> int:
    """Delete the shares of deals that are over on-chain (settled, or past their last epoch)."""
    records = [r for r in await store.records() if r.deal_id and r.state == "ok"]
    epoch = await chain.current_epoch()
    ended: set[int] = set()
    for deal_id in {r.deal_id for r in records}:
        try:
            deal = await chain.get_deal(deal_id)
        except market_errors.NotFound:
            continue  # not ours to judge: keep the data
        if deal.settled or epoch >= deal.end_epoch:
            ended.add(deal_id)
    for r in records:
        if r.deal_id in ended:
            await store.delete(r.dataset, r.idx)
    return sum(r.deal_id in ended for r in records)
