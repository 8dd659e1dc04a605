"""The network as the chain says it is: a :class:`~market.directory.Directory` built from the
``Announced`` events of StorageMarket, with each operator's stake, exit and proof history kept
from the market's other events (:class:`OperatorLedger`).

For every operator the newest announcement that verifies wins (signed by the operator that sent
it, for this chain); a forged or malformed record is ignored and logged once, and the operator's
previous valid one stays. Only operators that are registered with stake left are listed (an
announcement of an unstaked address is ignored and logged); ``NodeInfo.available`` says whether
it may take new shares (stake at least the minimum, not leaving). A leaving operator stays listed:
its shares are still served until its deals end.

Events are read incrementally from the block after the last one read (a refresh makes one
``eth_getLogs`` per event type, and no call per operator). The view is cached with the block it
was read at (``block``) and refreshed when older than ``max_age`` seconds (0: on every call); a
refresh at the same head block costs one ``eth_blockNumber`` (a chain revert to an older block is
not supported: make a new directory).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from contracts.announcements import AnnouncementError, SignedAnnouncement
from contracts.chain import Chain
from contracts.proofs import proven_shares

from .directory import DirectoryError, NodeInfo

log = logging.getLogger("datasov.directory")


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    stake: int = 0
    leaving: bool = False
    proven: int = 0
    missed: int = 0
    last_block: int = 0  # latest proof seen on-chain


class OperatorLedger:
    """Every operator's stake, exit and proof history, kept from StorageMarket's events alone
    (``OperatorRegistered``, ``StakeChanged``, ``ProofMissed`` (the slash), ``OperatorLeaving``,
    ``ShareAccepted``, ``StorageProofs``), read incrementally: no per-operator call."""

    EVENTS = ("OperatorRegistered", "StakeChanged", "OperatorLeaving", "ShareAccepted", "StorageProofs", "ProofMissed")

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._next_block = chain.deployment.deployed_block
        self._provider: dict[tuple[int, int], str] = {}  # (deal, share) -> provider that accepted it
        self._records: dict[str, OperatorRecord] = {}

    def of(self, address: str) -> OperatorRecord:
        return self._records.get(address.lower(), OperatorRecord())

    async def update(self, to_block: int) -> None:
        if to_block < self._next_block:
            return
        events = self.chain.storage_market.events
        start = self._next_block
        asked = [getattr(events, name)().get_logs(from_block=start, to_block=to_block) for name in self.EVENTS]
        logs: list[Any] = [log for got in await asyncio.gather(*asked) for log in got]  # at once, not one by one
        logs.sort(key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
        for e in logs:
            self._apply(e["event"], e["args"], int(e["blockNumber"]))
        self._next_block = to_block + 1

    def _apply(self, name: str, args: Any, block: int) -> None:
        if name in ("OperatorRegistered", "StakeChanged"):
            self._set(str(args["operator"]), stake=int(args["stake"]))
        elif name == "OperatorLeaving":
            self._set(str(args["operator"]), leaving=True)
        elif name == "ShareAccepted":
            self._provider[(int(args["dealId"]), int(args["shareIndex"]))] = str(args["provider"]).lower()
        elif name == "StorageProofs":  # one event per call, listing its proofs (contracts.proofs)
            for share in proven_shares(bytes(args["shares"])):
                provider = self._provider.get(share)
                if provider is not None:
                    r = self.of(provider)
                    self._set(provider, proven=r.proven + 1, last_block=max(r.last_block, block))
        elif name == "ProofMissed":
            r = self.of(str(args["provider"]))
            self._set(str(args["provider"]), stake=r.stake - int(args["slashed"]), missed=r.missed + 1)

    def _set(self, address: str, **changes: Any) -> None:
        key = address.lower()
        self._records[key] = replace(self._records.get(key, OperatorRecord()), **changes)


class ChainDirectory:
    """A :class:`~market.directory.Directory` from on-chain announcements (see the module doc)."""

    def __init__(self, chain: Chain, *, max_age: float = 5.0) -> None:
        self.chain = chain
        self.max_age = max_age
        self.block: int | None = None  # the block the current view was read at
        self.ledger = OperatorLedger(chain)
        self._minimum: int | None = None
        self._next_block = chain.deployment.deployed_block
        self._latest: dict[str, tuple[SignedAnnouncement, int]] = {}  # operator -> (newest valid, block)
        self._nodes: list[NodeInfo] = []
        self._read_at = float("-inf")
        self._reading = asyncio.Lock()

    @property
    def chain_id(self) -> int:
        """The chain every listed announcement is for (a DHT record for another chain is not this node)."""
        return self.chain.deployment.chain_id

    async def refresh(self) -> int:
        """Read new announcements and every announced operator's stake; returns the block read at.
        Callers at once (a command asking about several nodes concurrently) read one after the
        other: the events of a block range are applied once."""
        async with self._reading:
            return await self._refresh()

    async def _refresh(self) -> int:
        head = await self.chain.block_number()
        if head == self.block:  # nothing can have changed since the view was read
            self._read_at = time.monotonic()
            return head

        async def announced() -> None:
            if head >= self._next_block:
                for record in await self.chain.announced(from_block=self._next_block, to_block=head):
                    self._take(record.operator, record.record, record.block)
                self._next_block = head + 1

        async def stake_floor() -> None:
            if self._minimum is None:
                self._minimum = await self.chain.min_stake()  # immutable

        await asyncio.gather(announced(), self.ledger.update(head), stake_floor())  # independent reads: at once
        minimum = self._minimum
        assert minimum is not None  # read above
        chain_id = self.chain.deployment.chain_id
        nodes = []
        for address, (signed, block) in self._latest.items():
            ann = signed.announcement
            if ann.chain_id != chain_id:
                continue  # logged when read
            op = self.ledger.of(address)
            if op.stake == 0:
                log.info("ignoring the announcement of %s: no stake (left, or never staked)", address)
                continue
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
                    proofs_ok=op.proven,
                    proofs_missed=op.missed,
                    last_seen_block=max(block, op.last_block),
                    issued_at=ann.issued_at,
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

    async def unreachable(self, address: str) -> str | None:
        """The node at the URL given for ``address`` did not answer: the chain is read again now (it
        may have re-announced since the cached view); its URL if that changed, else None
        (:class:`market.directory.Rediscovers`)."""
        before = next((n.url for n in self._nodes if n.address.lower() == address.lower()), None)
        await self.refresh()
        after = next((n.url for n in self._nodes if n.address.lower() == address.lower()), None)
        return after if after is not None and after != before else None
