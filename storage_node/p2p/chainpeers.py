"""The libp2p peers the chain names: where a node whose bootstrap peers are gone re-joins the DHT.

Every staked node's newest on-chain announcement carries its peer id and listen addresses; a node
that started alone (:attr:`storage_node.p2p.host.P2PHost.bootstrapped` empty) tries them, with the
bootstrap peers, until one answers (``P2PHost(more_peers=...)``).
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from contracts.announcements import Announcement, SignedAnnouncement
from contracts.errors import AnnouncementError
from contracts.operators import AnnouncedRecord

log = logging.getLogger("datasov.node.p2p")


@runtime_checkable
class AnnouncementsChain(Protocol):
    """The one chain read this needs (``contracts.chain.Chain`` has it)."""

    async def announced(
        self, *, from_block: int | None = None, to_block: int | str = "latest", operator: str | None = None
    ) -> list[AnnouncedRecord]: ...


async def chain_peers(chain: AnnouncementsChain) -> list[str]:
    """Full multiaddrs (``.../p2p/<peer id>``) from each operator's newest valid announcement."""
    newest: dict[str, Announcement] = {}
    for event in await chain.announced():
        try:
            ann = SignedAnnouncement.open(event.record).announcement
        except AnnouncementError as err:
            log.debug("ignoring an announcement by %s: %s", event.operator, err)
            continue
        if ann.operator.lower() == event.operator.lower():
            newest[event.operator.lower()] = ann  # chain order: the newest wins
    return [f"{a}/p2p/{ann.peer_id}" for ann in newest.values() if ann.peer_id for a in ann.multiaddrs]
