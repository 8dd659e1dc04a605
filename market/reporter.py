"""Watching storage deals: report missed proofs so faulty providers are slashed.

A proof owed for epoch E can be reported during epoch E + 1 only (``ReportWindowClosed`` after),
so the reporter checks the previous epoch once per epoch. The owner's agent runs one by default;
anyone may (the reporter gets half the slashed stake).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from contracts import errors
from contracts.chain import Chain
from contracts.loop import Ticking

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger("datasov.deals")


@dataclass(frozen=True, slots=True)
class MissedProof:
    deal_id: int
    share_index: int
    epoch: int
    provider: str


class FaultReporter(Ticking):
    """Reports every missed proof of the deals opened by ``owner`` (or of ``deal_ids``)."""

    def __init__(
        self,
        chain: Chain,
        reporter: LocalAccount,
        *,
        owner: str | None = None,
        deal_ids: list[int] | None = None,
        poll: float = 1.0,
    ) -> None:
        self.chain = chain
        self.reporter = reporter
        self.owner = owner if owner is not None else reporter.address
        self.deal_ids = deal_ids
        self.poll = poll
        self.reported: list[MissedProof] = []
        self._checked_epoch = -1

    async def tick(self) -> list[MissedProof]:
        epoch = await self.chain.current_epoch() - 1
        if epoch < 0 or epoch == self._checked_epoch:
            return []
        deal_ids = self.deal_ids if self.deal_ids is not None else await self.chain.deals_of(owner=self.owner)
        found: list[MissedProof] = []
        for deal_id in deal_ids:
            deal = await self.chain.get_deal(deal_id)
            if deal.settled or epoch >= deal.end_epoch:
                continue
            for i, share in enumerate(await self.chain.get_shares(deal_id)):  # one read, not 2n
                if not share.due(epoch, deal.end_epoch) or share.proven(epoch):
                    continue
                try:
                    await self.chain.report_missed_proof(self.reporter, deal_id, i, epoch)
                except (errors.StateError, errors.ProofRejected) as err:  # proven or reported meanwhile
                    log.info("not reported %d/%d epoch %d: %s", deal_id, i, epoch, err)
                    continue
                log.warning(
                    "share %d of deal %d missed its proof in epoch %d: %s slashed", i, deal_id, epoch, share.provider
                )
                found.append(MissedProof(deal_id, i, epoch, share.provider))
        self._checked_epoch = epoch
        self.reported.extend(found)
        return found
