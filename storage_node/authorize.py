"""Authorising storage orders against on-chain deals (the node's ``Authorizer`` with a chain).

An order is accepted only if its deal exists and is open, the signer owns it, it pays at least the
node's announced ask (per GiB per epoch, for the share's size), this node is the share's assigned
provider, the dataset and sizes match the registered dataset, and the declared share root is
provably part of the deal's commitment root (the order carries the Merkle path).
Checks that need no chain come first, and a deal's immutable facts are cached (see DealAuthorizer).
:class:`DeletionGuard` honours an owner's delete order only for a share the chain no longer asks
this node to prove; :func:`collect_ended_deals` deletes what a node holds for deals that are over.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from contracts import errors as chain_errors
from contracts.models import Deal, Share
from erasure import merkle

from .chainview import DealChain, EpochChain, OrderViewChain
from .errors import BelowAsk, NotAuthorized, NotCommitted, StillOwed, UnknownDeal, WrongNode, WrongRoot
from .orders import PendingOrder, StorageOrder
from .store.index import ShareRecord
from .store.shares import ShareStore


@dataclass(frozen=True, slots=True)
class DealFacts:
    """What never changes about a deal once opened: enough to refuse most orders without the chain."""

    owner: str
    n: int
    commitment_root: bytes
    manifest_hash: str
    share_size: int
    leaf_size: int
    fee_per_share_epoch: int


GIB = 1 << 30
MAX_SHARES = 256


class DealAuthorizer:
    """Checks an order against its deal, cheapest check first.

    The immutable facts of a deal (owner, n, commitment root, dataset hash and sizes) are read once
    (two chain reads, shared by concurrent orders) and kept; an order that fails them (a signer
    that is not the owner, a wrong dataset, size or root) costs no chain call after that. A deal id
    that does not exist is remembered for ``missing_ttl`` seconds. Only an order that passes all of
    these reads what can change: whether the deal is settled, and the share's provider.

    With a chain that offers ``orderView`` (:class:`OrderViewChain`, as ``contracts.chain.Chain``
    does), an order that passes what is known costs one chain read in all (the deal, the share and
    the dataset's manifest hash together) instead of four, or two once the facts are known.

    ``ask``: the node's announced price, token base units per GiB per epoch; a deal paying less per
    share per epoch than ``ceil(ask * share_size / GiB)`` is refused (``BelowAsk``, 402).
    """

    def __init__(
        self,
        chain: DealChain,
        node_address: str,
        *,
        ask: int = 0,
        cache_size: int = 4096,
        missing_ttl: float = 30.0,
    ) -> None:
        self.chain = chain
        self.node_address = node_address
        self.ask = ask
        self.cache_size = cache_size
        self.missing_ttl = missing_ttl
        self._facts: OrderedDict[int, DealFacts] = OrderedDict()
        self._missing: OrderedDict[int, float] = OrderedDict()  # deal id -> when it was found absent
        self._reading: dict[int, asyncio.Future[DealFacts]] = {}

    async def facts(self, deal_id: int) -> DealFacts:
        """The deal's immutable facts, from the cache or (once, for all waiting orders) the chain."""
        known = self._facts.get(deal_id)
        if known is not None:
            self._facts.move_to_end(deal_id)
            return known
        missing_since = self._missing.get(deal_id)
        if missing_since is not None and time.monotonic() - missing_since < self.missing_ttl:
            raise UnknownDeal(f"deal {deal_id} is not on-chain")
        reading = self._reading.get(deal_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(deal_id))
            self._reading[deal_id] = reading
            reading.add_done_callback(lambda _: self._reading.pop(deal_id, None))
        return await asyncio.shield(reading)

    async def _read(self, deal_id: int) -> DealFacts:
        try:
            deal = await self.chain.get_deal(deal_id)
            if not deal.committed:  # a draft: nothing to cache yet, its root comes with commitDeal
                raise NotCommitted(f"deal {deal_id} is not committed to a dataset yet")
            dataset = await self.chain.get_dataset(deal.dataset_id)
        except chain_errors.NotFound as err:
            self._remember(self._missing, deal_id, time.monotonic())
            raise UnknownDeal(f"deal {deal_id} is not on-chain") from err
        facts = DealFacts(
            deal.owner.lower(),
            deal.n,
            deal.commitment_root,
            dataset.manifest_hash.hex(),
            dataset.share_size,
            dataset.leaf_size,
            deal.fee_per_share_epoch,
        )
        self._missing.pop(deal_id, None)
        self._remember(self._facts, deal_id, facts)
        return facts

    def _remember(self, cache: OrderedDict[int, Any], key: int, value: Any) -> None:
        cache[key] = value
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    async def __call__(self, signer: str, order: StorageOrder) -> None:
        if isinstance(self.chain, OrderViewChain):
            return await self._in_one_read(self.chain, signer, order)
        facts = await self.facts(order.deal_id)
        self._check_facts(signer, order, facts)
        # signed by the owner and consistent: now what can change (settlement, repair's reassignment)
        try:
            deal = await self.chain.get_deal(order.deal_id)
            share = await self.chain.get_share(order.deal_id, order.index)
        except chain_errors.NotFound as err:
            raise UnknownDeal(f"deal {order.deal_id} share {order.index} is not on-chain") from err
        self._check_current(order, deal, share)

    async def _in_one_read(self, chain: OrderViewChain, signer: str, order: StorageOrder) -> None:
        """The same checks with one chain read per order (``orderView``); known facts refuse first."""
        known = self._facts.get(order.deal_id)
        missing_since = self._missing.get(order.deal_id)
        if known is not None:
            self._check_facts(signer, order, known)
        elif missing_since is not None and time.monotonic() - missing_since < self.missing_ttl:
            raise UnknownDeal(f"deal {order.deal_id} is not on-chain")
        if not 0 <= order.index < MAX_SHARES:
            raise UnknownDeal(f"deal {order.deal_id} has no share {order.index}")
        try:
            deal, share, manifest_hash = await chain.order_view(order.deal_id, order.index)
        except chain_errors.NotFound as err:
            if known is None:
                self._remember(self._missing, order.deal_id, time.monotonic())
            raise UnknownDeal(f"deal {order.deal_id} share {order.index} is not on-chain") from err
        if not deal.committed:
            raise NotCommitted(f"deal {order.deal_id} is not committed to a dataset yet")
        facts = DealFacts(
            deal.owner.lower(),
            deal.n,
            deal.commitment_root,
            manifest_hash.hex(),
            deal.share_size,
            deal.leaf_size,
            deal.fee_per_share_epoch,
        )
        self._missing.pop(order.deal_id, None)
        self._remember(self._facts, order.deal_id, facts)
        self._check_facts(signer, order, facts)
        self._check_current(order, deal, share)

    def _check_facts(self, signer: str, order: StorageOrder, facts: DealFacts) -> None:
        if signer.lower() != facts.owner:
            raise NotAuthorized(f"{signer} does not own deal {order.deal_id}")
        if order.dataset != facts.manifest_hash:
            raise UnknownDeal("the order's dataset is not the deal's dataset")
        if (order.size, order.leaf_size) != (facts.share_size, facts.leaf_size):
            raise UnknownDeal("share size or leaf size differ from the registered dataset")
        if not 0 <= order.index < facts.n:
            raise UnknownDeal(f"deal {order.deal_id} has no share {order.index}")
        wanted = -(-self.ask * facts.share_size // GIB)
        if facts.fee_per_share_epoch < wanted:
            raise BelowAsk(
                f"deal {order.deal_id} pays {facts.fee_per_share_epoch} per share per epoch; this node's ask of"
                f" {self.ask} per GiB per epoch is {wanted} for a share of {facts.share_size} bytes"
            )
        proof = merkle.MerkleProof(order.index, facts.n, tuple(bytes.fromhex(h) for h in order.share_proof))
        root = merkle.root_from_proof(merkle.leaf_hash(bytes.fromhex(order.share_root)), proof)
        if root != facts.commitment_root:
            raise WrongRoot("the share root is not part of the deal's commitment root")

    def _check_current(self, order: StorageOrder | PendingOrder, deal: Deal, share: Share) -> None:
        if deal.settled:
            raise UnknownDeal(f"deal {order.deal_id} is settled")
        if share.provider.lower() != self.node_address.lower():
            raise WrongNode(f"share {order.index} of deal {order.deal_id} is assigned to {share.provider}")

    async def pending(self, signer: str, order: PendingOrder) -> None:
        """May ``signer`` send share ``order.index`` of a (draft or committed) deal before activation?

        Only the deal's owner, for a deal not settled, a share this node is assigned, of exactly the
        deal's share size and leaf size, at a fee that meets the ask: what a node holds pending is
        bounded by deals whose escrow is already on-chain. Read fresh (a draft changes at commit)."""
        share: Share | None = None
        try:
            if isinstance(self.chain, OrderViewChain) and 0 <= order.index < MAX_SHARES:
                deal, share, _ = await self.chain.order_view(order.deal_id, order.index)
            else:
                deal = await self.chain.get_deal(order.deal_id)
        except chain_errors.NotFound as err:
            raise UnknownDeal(f"deal {order.deal_id} share {order.index} is not on-chain") from err
        if signer.lower() != deal.owner.lower():
            raise NotAuthorized(f"{signer} does not own deal {order.deal_id}")
        if deal.settled:
            raise UnknownDeal(f"deal {order.deal_id} is settled")
        if not 0 <= order.index < deal.n:
            raise UnknownDeal(f"deal {order.deal_id} has no share {order.index}")
        if (order.size, order.leaf_size) != (deal.share_size, deal.leaf_size):
            raise UnknownDeal(
                f"deal {order.deal_id} assigns shares of {deal.share_size} bytes in {deal.leaf_size}-byte leaves"
            )
        wanted = -(-self.ask * deal.share_size // GIB)
        if deal.fee_per_share_epoch < wanted:
            raise BelowAsk(f"deal {order.deal_id} pays {deal.fee_per_share_epoch} per share per epoch; ask is {wanted}")
        if share is None:
            try:
                share = await self.chain.get_share(order.deal_id, order.index)
            except chain_errors.NotFound as err:
                raise UnknownDeal(f"deal {order.deal_id} share {order.index} is not on-chain") from err
        self._check_current(order, deal, share)


class DeletionGuard:
    """Refuses to delete a share that is due in the current or a later epoch (StillOwed).

    Deleting it would get this node slashed at the next missed proof, whoever signed the order:
    the owner must terminate the deal first (``terminateDeal`` owes nothing from the current
    epoch on). A share is free to go once its deal is settled or past its last epoch, or it is no
    longer this node's (replaced) or already faulty; a share stored without a deal owes nothing.
    """

    def __init__(self, chain: EpochChain, node_address: str) -> None:
        self.chain = chain
        self.node_address = node_address

    async def __call__(self, record: ShareRecord) -> None:
        if not record.deal_id:
            return
        try:
            deal = await self.chain.get_deal(record.deal_id)
            share = await self.chain.get_share(record.deal_id, record.idx)
        except chain_errors.NotFound:
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


async def collect_ended_deals(store: ShareStore, chain: EpochChain) -> int:
    """Delete the shares of deals that are over on-chain (settled, or past their last epoch)."""
    records = [r for r in await store.records() if r.deal_id and r.state == "ok"]
    epoch = await chain.current_epoch()
    ended: set[int] = set()
    for deal_id in {r.deal_id for r in records}:
        try:
            deal = await chain.get_deal(deal_id)
        except chain_errors.NotFound:
            continue  # not ours to judge: keep the data
        if deal.settled or epoch >= deal.end_epoch:
            ended.add(deal_id)
    for r in records:
        if r.deal_id in ended:
            await store.delete(r.dataset, r.idx)
    return sum(r.deal_id in ended for r in records)
