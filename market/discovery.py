"""Nodes as a client finds them: the chain says who is staked and where, the DHT says what is fresh.

:class:`NetworkDirectory` is a :class:`market.directory.Directory` built from two sources:

- ``chain``: any Directory whose nodes are the staked operators and the URL of each one's latest
  on-chain announcement (``market.directory.ChainDirectory``). It is authoritative: a node the
  chain does not list is not in this directory, whatever the DHT says.
- ``dht``: a :class:`PeerSource` of verified peer records (``storage_node.p2p.host.P2PHost`` is
  one; market may not import it, so this module declares the narrow view it needs). A record adds
  the node's libp2p peer id and multiaddrs, its free space and when it last said so.

A record is used only if its operator signature verifies (again, here) and its URL is the one the
chain announcement gives, or, for a node that moved, if it is a newer announcement (``issued_at``
later than the chain's, for the same chain) than the one on-chain: the operator signed the new URL and
its on-chain re-announcement is not read yet (or not sent). With ``identify`` (e.g.
:func:`identify_with` a ``NodeClient``), a node whose URL answers as another operator is dropped.
Everything ignored is logged at WARNING with the reason, once per operator and reason. Units:
``free`` bytes, ``seen_at`` unix seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from contracts.announcements import AnnouncementError, SignedAnnouncement

from .directory import Directory, DirectoryError, NodeInfo

log = logging.getLogger("datasov.market.discovery")


class PeerView(Protocol):
    """A verified DHT peer record (``storage_node.p2p.records.PeerRecord``)."""

    @property
    def signed(self) -> SignedAnnouncement: ...

    @property
    def free(self) -> int: ...

    @property
    def seen_at(self) -> int: ...


class PeerSource(Protocol):
    async def peer_records(self, peers: Mapping[str, Sequence[str]] | None = None) -> Sequence[PeerView]:
        """The records (signatures already checked) of ``peers`` (peer id: multiaddrs, as the chain
        announces them), or of every storage node this source can find when ``peers`` is None."""
        ...


Reach = Literal["up", "down", "impostor", "unasked"]
Identify = Callable[[str], Awaitable[str]]
"""``await identify(url)``: the operator address the node at ``url`` answers with."""


def identify_with(client: Any, *, timeout: float = 5.0) -> Identify:
    """An :data:`Identify` asking a node's ``/v1/health`` through a ``storage_node.client.NodeClient``."""

    async def identify(url: str) -> str:
        answer = await asyncio.wait_for(client.health(url), timeout)
        return str(answer.get("address", ""))

    return identify


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node as this directory sees it: the chain's :class:`NodeInfo` (peer id and multiaddrs
    from its DHT record when one was used), and what only the DHT and the node itself say."""

    info: NodeInfo
    in_dht: bool = False  # a usable DHT record was found
    free: int | None = None  # bytes free, as its DHT record says
    seen_at: int | None = None  # unix seconds: when it published that record
    reachable: bool | None = None  # None: not asked (no identify)

    @property
    def address(self) -> str:
        return self.info.address

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def peer_id(self) -> str:
        return self.info.peer_id if self.in_dht else ""


class NetworkDirectory:
    def __init__(
        self,
        chain: Directory,
        dht: PeerSource | None = None,
        *,
        identify: Identify | None = None,
        max_age: float = 0.0,
        chain_id: int | None = None,
    ) -> None:
        self.chain = chain
        # a DHT record may replace the chain's URL only when its chain is known (ChainDirectory has it)
        self.chain_id = chain_id if chain_id is not None else getattr(chain, "chain_id", None)
        self.dht = dht
        self.identify = identify
        self.max_age = max_age  # seconds :meth:`nodes` reuses the last view (0: asks every time)
        self._said: set[tuple[str, str]] = set()
        self._last: dict[str, NodeView] = {}
        self._read_at: float | None = None

    def _ignore(self, operator: str, reason: str) -> None:
        if (operator.lower(), reason) not in self._said:
            self._said.add((operator.lower(), reason))
            log.warning("ignoring node %s: %s", operator, reason)

    async def _records(self, staked: dict[str, NodeInfo]) -> dict[str, PeerView]:
        """The newest usable DHT record per staked operator (lower-cased address)."""
        if self.dht is None or not staked:
            return {}
        # The chain names each node's peer id: ask for exactly those (each of the peer itself,
        # one request); only when some staked node announced none, walk the whole DHT.
        ids = {n.peer_id: list(n.multiaddrs) for n in staked.values() if n.peer_id}
        try:
            found = await self.dht.peer_records(ids if len(ids) == len(staked) else None)
        except Exception as err:  # the DHT is a freshness hint: without it, the chain alone
            log.warning("DHT lookup failed, using the chain alone: %s", err)
            return {}
        best: dict[str, PeerView] = {}
        for record in found:
            a = record.signed.announcement
            try:
                record.signed.verify()
            except AnnouncementError as err:
                self._ignore(a.operator, f"DHT record of peer {a.peer_id} is forged ({err})")
                continue
            chain_node = staked.get(a.operator.lower())
            if chain_node is None:
                self._ignore(a.operator, f"DHT record of peer {a.peer_id}, but the chain lists no staked node for it")
                continue
            if a.http_url.rstrip("/") != chain_node.url.rstrip("/") and not self._moved(record, chain_node):
                self._ignore(
                    a.operator, f"its DHT record says {a.http_url}, its chain announcement says {chain_node.url}"
                )
                continue
            held = best.get(a.operator.lower())
            if (
                held is None
                or record.signed.newer_than(held.signed)
                or (record.signed == held.signed and record.seen_at > held.seen_at)
            ):
                best[a.operator.lower()] = record
        return best

    def _moved(self, record: PeerView, chain_node: NodeInfo) -> bool:
        """Is ``record`` (verified, of this operator) the node's newer announcement of a new URL?"""
        a = record.signed.announcement
        if self.chain_id is None or a.chain_id != self.chain_id or not 0 < chain_node.issued_at < a.issued_at:
            return False
        if (a.operator.lower(), a.http_url) not in self._said:
            self._said.add((a.operator.lower(), a.http_url))
            log.info(
                "node %s moved: its DHT record (issued at %d) says %s, its older chain announcement (%d) %s",
                a.operator,
                a.issued_at,
                a.http_url,
                chain_node.issued_at,
                chain_node.url,
            )
        return True

    async def _reach(self, node: NodeInfo) -> Reach:
        if self.identify is None:
            return "unasked"
        try:
            answered = await self.identify(node.url)
        except Exception as err:  # down or slow: listed, not reachable now
            log.debug("node %s at %s did not answer: %r", node.address, node.url, err)
            return "down"
        if answered.lower() != node.address.lower():
            self._ignore(node.address, f"the node at {node.url} answers as operator {answered or '(none)'}")
            return "impostor"
        return "up"

    async def _views(self, staked: dict[str, NodeInfo]) -> list[NodeView]:
        records = await self._records(staked)
        for address, record in records.items():  # a node that moved is reached (and identified) at its new URL
            a = record.signed.announcement
            staked[address] = replace(
                staked[address], url=a.http_url, peer_id=a.peer_id, multiaddrs=a.multiaddrs, issued_at=a.issued_at
            )
        checks = await asyncio.gather(*(self._reach(n) for n in staked.values()))
        out = []
        for node, reach in zip(staked.values(), checks, strict=True):
            if reach == "impostor":
                continue
            reachable = None if reach == "unasked" else reach == "up"
            found = records.get(node.address.lower())
            if found is None:
                out.append(NodeView(node, reachable=reachable))
            else:
                out.append(NodeView(node, True, found.free, found.seen_at, reachable))
        return out

    async def views(self) -> list[NodeView]:
        """Every staked node, with what the DHT adds; impostors (with ``identify``) left out."""
        out = await self._views({n.address.lower(): n for n in await self.chain.nodes()})
        self._last = {v.address.lower(): v for v in out}
        self._read_at = time.monotonic()
        return out

    async def view_of(self, address: str) -> NodeView | None:
        """One node as the chain and its own DHT record give it now (one record asked for, by the
        peer id the chain announces; a walk of the DHT if it announced none); None if the chain
        lists no staked node for ``address`` or it is an impostor."""
        staked = {n.address.lower(): n for n in await self.chain.nodes() if n.address.lower() == address.lower()}
        found = await self._views(staked) if staked else []
        if not found:
            self._last.pop(address.lower(), None)
            return None
        self._last[address.lower()] = found[0]
        return found[0]

    async def unreachable(self, address: str) -> str | None:
        """The node at the URL given for ``address`` did not answer: its chain entry and DHT record
        read again; its URL if that changed, else None (:class:`market.directory.Rediscovers`)."""
        before = self._last.get(address.lower())
        view = await self.view_of(address)
        if view is None or (before is not None and view.url == before.url):
            return None
        return view.url

    async def nodes(self) -> Sequence[NodeInfo]:
        if self._read_at is not None and time.monotonic() - self._read_at < self.max_age:
            return [v.info for v in self._last.values()]
        return [v.info for v in await self.views()]

    async def url_of(self, address: str) -> str:
        view = self._last.get(address.lower())
        if view is None:
            await self.views()
            view = self._last.get(address.lower())
        if view is None:
            raise DirectoryError(f"no usable node known for operator {address}")
        return view.url
