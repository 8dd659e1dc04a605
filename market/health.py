"""Can a dataset be served? Read from the chain's deal and share state, never from node answers.

A dataset is servable when one of its deals is active (not settled, not terminated, its last epoch
not passed) and holds at least k healthy shares (accepted by their provider and not reported
faulty). Like ``StorageMarket.isServable`` only the latest two deals are looked at (a renewal and
the deal it renews); unlike it, a terminated deal counts as over at once, because its owner has
already ordered the holders to delete their shares.

Whether nodes answer over HTTP is a separate, weaker fact (a node keeps answering for a share the
chain has marked faulty): ``datasov show`` reports both, and never lets the second stand in for the
first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from contracts.chain import Chain
from contracts.models import Deal, Share

DealState = Literal["active", "terminated", "ended", "settled"]
Status = Literal["servable", "unservable"]
DEALS_CONSIDERED = 2


@dataclass(frozen=True, slots=True)
class ShareHealth:
    index: int
    provider: str
    accepted: bool
    faulty: bool

    @property
    def healthy(self) -> bool:
        return self.accepted and not self.faulty

    @classmethod
    def of(cls, index: int, share: Share) -> ShareHealth:
        return cls(index, share.provider, share.accepted, share.faulty)


@dataclass(frozen=True, slots=True)
class DealHealth:
    deal_id: int
    start_epoch: int
    end_epoch: int
    """First epoch after the deal (moved earlier by a termination)."""
    state: DealState
    shares: tuple[ShareHealth, ...]

    @property
    def healthy(self) -> int:
        return sum(s.healthy for s in self.shares)

    @property
    def faulty(self) -> int:
        return sum(s.faulty for s in self.shares)

    @property
    def pending(self) -> int:
        """Shares whose provider has not accepted them (yet)."""
        return sum(not s.accepted for s in self.shares)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.deal_id,
            "state": self.state,
            "start_epoch": self.start_epoch,
            "end_epoch": self.end_epoch,
            "healthy": self.healthy,
            "faulty": self.faulty,
            "pending": self.pending,
        }


@dataclass(frozen=True, slots=True)
class DatasetHealth:
    dataset_id: int
    k: int
    n: int
    epoch: int
    deal: DealHealth | None
    """The deal the dataset is served from: the first servable one, else the latest."""

    @property
    def servable(self) -> bool:
        return self.deal is not None and self.deal.state == "active" and self.deal.healthy >= self.k

    @property
    def status(self) -> Status:
        return "servable" if self.servable else "unservable"

    @property
    def reason(self) -> str:
        """One line a user can act on: why it is (not) servable."""
        deal = self.deal
        if deal is None:
            return "no storage deal"
        if deal.state == "settled":
            return f"storage deal {deal.deal_id} is settled"
        if deal.state == "ended":
            return f"storage deal {deal.deal_id} has ended (last epoch {deal.end_epoch - 1})"
        if deal.state == "terminated":
            return f"storage deal {deal.deal_id} was terminated by its owner (last epoch {deal.end_epoch - 1})"
        counts = f"{deal.healthy}/{len(deal.shares)} shares healthy, {deal.faulty} faulty"
        if deal.pending:
            counts += f", {deal.pending} not accepted"
        return f"{counts}, need {self.k}"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "servable": self.servable,
            "reason": self.reason,
            "k": self.k,
            "n": self.n,
            "epoch": self.epoch,
            "healthy": self.deal.healthy if self.deal else 0,
            "faulty": self.deal.faulty if self.deal else 0,
            "deal": self.deal.to_json() if self.deal else None,
        }


def _state(deal: Deal, epoch: int, terminated: bool) -> DealState:
    if deal.settled:
        return "settled"
    if terminated and epoch <= deal.end_epoch:
        # ended early by its owner: terminateDeal in epoch c sets the end to c, so the deal reads
        # "terminated" until its last report window (epoch c) is over, then "ended"
        return "terminated"
    if epoch >= deal.end_epoch:
        return "ended"
    return "active"


async def deal_health(chain: Chain, deal_id: int, *, epoch: int, terminated: bool | None = None) -> DealHealth:
    """One deal's health (two reads: the deal and its shares; a third, its termination event,
    unless ``terminated`` is known)."""
    deal, shares = await asyncio.gather(chain.get_deal(deal_id), chain.get_shares(deal_id))
    if terminated is None:
        terminated = deal_id in await chain.terminated_deals([deal_id])
    state = _state(deal, epoch, terminated)
    return DealHealth(
        deal_id, deal.start_epoch, deal.end_epoch, state, tuple(ShareHealth.of(i, s) for i, s in enumerate(shares))
    )


async def dataset_health(chain: Chain, dataset_id: int, *, k: int, n: int) -> DatasetHealth:
    """The health of dataset ``dataset_id`` (``k``-of-``n``, as registered) at the current epoch."""
    return (await datasets_health(chain, {dataset_id: (k, n)}))[dataset_id]


async def datasets_health(chain: Chain, datasets: Mapping[int, tuple[int, int]]) -> dict[int, DatasetHealth]:
    """The health of each dataset (id -> its registered (k, n)) at the current epoch: the reads do
    not grow with n (two log reads for all, then two reads per deal looked at, all at once)."""
    epoch, opened = await asyncio.gather(chain.current_epoch(), chain.deals_of_datasets(list(datasets)))
    considered = {i: opened[i][-DEALS_CONSIDERED:] for i in datasets}
    deal_ids = sorted({d for ids in considered.values() for d in ids})
    terminated = await chain.terminated_deals(deal_ids)
    found = await asyncio.gather(*(deal_health(chain, d, epoch=epoch, terminated=d in terminated) for d in deal_ids))
    deals = dict(zip(deal_ids, found, strict=True))
    out = {}
    for dataset_id, (k, n) in datasets.items():
        candidates = [deals[d] for d in reversed(considered[dataset_id])]  # latest first
        chosen = next((d for d in candidates if d.state == "active" and d.healthy >= k), None)
        if chosen is None and candidates:
            chosen = candidates[0]
        out[dataset_id] = DatasetHealth(dataset_id, k, n, epoch, chosen)
    return out
