"""The network as the chain says it is: a :class:`~market.directory.Directory` built from the
``Announced`` events of StorageMarket, and each operator's proof history.

For every operator the newest announcement that verifies wins (signed by the operator that sent
it, for this chain); a forged or malformed record is ignored and logged once, and the operator's
previous valid one stays. Only operators that are registered with stake left are listed (an
announcement of an unstaked address is ignored and logged); ``NodeInfo.available`` says whether
it may take new shares (stake at least the minimum, not leaving). A leaving operator stays listed:
its shares are still served until its deals end.

Events are read incrementally from the block after the last one read; stakes are read again on
every refresh. The view is cached with the block it was read at (``block``) and refreshed when
older than ``max_age`` seconds (0: on every call).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contracts.announcements import AnnouncementError, SignedAnnouncement
from contracts.chain import Chain

from .directory import DirectoryError, NodeInfo

log = logging.getLogger("datasov.directory")


@dataclass(frozen=True, slots=True)
class ProofRecord:
    proven: int = 0
    missed: int = 0
    last_block: int = 0  # latest proof or announcement seen on-chain


class ProofHistory:
    """Proofs made and missed per operator, from ``ShareAccepted``, ``ProviderReplaced``,
    ``StorageProven`` and ``ProofMissed`` events (read incrementally)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._next_block = chain.deployment.deployed_block
        self._provider: dict[tuple[int, int], str] = {}  # (deal, share) -> provider that accepted it
        self._records: dict[str, ProofRecord] = {}

    def of(self, address: str) -> ProofRecord:
        return self._records.get(address.lower(), ProofRecord())

    async def update(self, to_block: int) -> None:
        if to_block < self._next_block:
            return
        events = self.chain.storage_market.events
        span = {"from_block": self._next_block, "to_block": to_block}
        logs: list[Any] = []
        for event in (events.ShareAccepted, events.StorageProven, events.ProofMissed):
            logs.extend(await event().get_logs(**span))
        logs.sort(key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
        for e in logs:
            args, block = e["args"], int(e["blockNumber"])
            key = (int(args["dealId"]), int(args["shareIndex"]))
            if e["event"] == "ShareAccepted":
                self._provider[key] = str(args["provider"]).lower()
            elif e["event"] == "StorageProven" and key in self._provider:
                self._bump(self._provider[key], block, proven=1)
            elif e["event"] == "ProofMissed":
                self._bump(str(args["provider"]).lower(), block, missed=1)
        self._next_block = to_block + 1

    def _bump(self, address: str, block: int, *, proven: int = 0, missed: int = 0) -> None:
        r = self._records.get(address, ProofRecord())
        self._records[address] = ProofRecord(r.proven + proven, r.missed + missed, max(r.last_block, block))


class ChainDirectory:
    """A :class:`~market.directory.Directory` from on-chain announcements (see the module doc)."""

    def __init__(self, chain: Chain, *, max_age: float = 5.0) -> None:
        self.chain = chain
        self.max_age = max_age
        self.block: int | None = None  # the block the current view was read at
        self.history = ProofHistory(chain)
        self._next_block = chain.deployment.deployed_block
        self._latest: dict[str, tuple[SignedAnnouncement, int]] = {}  # operator -> (newest valid, block)
        self._nodes: list[NodeInfo] = []
        self._read_at = float("-inf")

    async def refresh(self) -> int:
        """Read new announcements and every announced operator's stake; returns the block read at."""
        head = await self.chain.block_number()
        if head >= self._next_block:
            for record in await self.chain.announced(from_block=self._next_block, to_block=head):
                self._take(record.operator, record.record, record.block)
            self._next_block = head + 1
        await self.history.update(head)
        minimum = await self.chain.min_stake()
        chain_id = self.chain.deployment.chain_id
        nodes = []
        for address, (signed, block) in self._latest.items():
            ann = signed.announcement
            if ann.chain_id != chain_id:
                continue  # logged when read
            op = await self.chain.get_operator(address)
            if not op.registered or op.stake == 0:
                log.info("ignoring the announcement of %s: no stake (left, or never staked)", address)
                continue
            proofs = self.history.of(address)
            nodes.append(
                NodeInfo(
                    address=ann.operator,
                    url=ann.http_url,
                    ask=ann.ask,
                    capacity=ann.capacity,
                    region=ann.region,
                    peer_id=ann.peer_id,
                    multiaddrs=ann.multiaddrs,
                    stake=op.stake,
                    available=op.stake >= minimum and not op.leaving,
                    proofs_ok=proofs.proven,
                    proofs_missed=proofs.missed,
                    last_seen_block=max(block, proofs.last_block),
                )
            )
        self._nodes = sorted(nodes, key=lambda n: n.address.lower())
        self.block = head
        self._read_at = time.monotonic()
        return head

    def _take(self, sender: str, raw: bytes, block: int) -> None:
        try:
            signed = SignedAnnouncement.open(raw)
        except AnnouncementError as err:
            log.warning("ignoring an announcement sent by %s in block %d: %s", sender, block, err)
            return
        ann = signed.announcement
        if ann.operator.lower() != sender.lower():
            log.warning("ignoring an announcement sent by %s for operator %s (block %d)", sender, ann.operator, block)
            return
        if ann.chain_id != self.chain.deployment.chain_id:
            log.warning("ignoring an announcement by %s for chain %d (block %d)", sender, ann.chain_id, block)
            return
        self._latest[sender] = (signed, block)  # events come in chain order: the newest wins

    async def _fresh(self) -> None:
        if self.block is None or time.monotonic() - self._read_at >= self.max_age:
            await self.refresh()

    async def nodes(self) -> Sequence[NodeInfo]:
        await self._fresh()
        return list(self._nodes)

    async def url_of(self, address: str) -> str:
        await self._fresh()
        for node in self._nodes:
            if node.address.lower() == address.lower():
                return node.url
        await self.refresh()  # it may have just announced
        for node in self._nodes:
            if node.address.lower() == address.lower():
                return node.url
        raise DirectoryError(f"no announced node for operator {address} (block {self.block})")
