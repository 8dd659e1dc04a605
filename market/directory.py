"""Where the storage nodes are: a narrow view the publisher, buyer and repair agent need.

A :class:`Directory` maps operator addresses to :class:`NodeInfo` (URL, announced terms, stake,
proof history). Implementations: :class:`market.chain_directory.ChainDirectory` (the chain's
announcements: authoritative for who is staked), :class:`market.discovery.NetworkDirectory` (a
chain directory combined with the libp2p DHT's peer records: fresh state, liars ignored) and
:class:`StaticDirectory` (a fixed list, for tests and old ``devnet.json`` files that still carry one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from .errors import MarketError


class DirectoryError(MarketError):
    """A directory file is missing or malformed, or a node is not in it."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as a client sees it. Only ``address`` and ``url`` are always known; the rest comes
    from its announcement and the chain (a static list leaves the defaults)."""

    address: str  # the operator's Ethereum address (checksummed)
    url: str  # http://host:port of its API
    ask: int = 0  # token base units per GiB per epoch
    capacity: int = 0  # bytes offered (announced; 0 = unknown)
    region: str = ""
    peer_id: str = ""  # libp2p peer id, "" if none announced
    multiaddrs: tuple[str, ...] = ()
    stake: int = 0  # 0 = unknown (static list)
    available: bool = True  # may take new shares: staked at least the minimum and not leaving
    proofs_ok: int = 0
    proofs_missed: int = 0
    last_seen_block: int = 0  # latest announcement or proof on-chain
    issued_at: int = 0  # unix seconds its announcement was signed (0 = unknown: a static list)


class Directory(Protocol):
    async def nodes(self) -> Sequence[NodeInfo]:
        """Every node this directory knows about (alive or not)."""
        ...

    async def url_of(self, address: str) -> str:
        """The API URL of an operator's node; raises :class:`DirectoryError` if unknown."""
        ...


@runtime_checkable
class Rediscovers(Protocol):
    async def unreachable(self, address: str) -> str | None:
        """The caller could not reach the operator's node at the URL this directory gave: look again
        (the chain re-read; the DHT asked where there is one). Returns the node's URL if it is now
        another one (the caller retries there), else None."""
        ...


async def moved(directory: Directory, address: str, url: str) -> str | None:
    """After ``url`` (what ``directory`` said for ``address``) did not answer: the node's new URL if
    the directory can find one (:class:`Rediscovers`), else None. A directory that cannot look
    again (a static list) finds none."""
    if not isinstance(directory, Rediscovers):
        return None
    found = await directory.unreachable(address)
    return found if found is not None and found.rstrip("/") != url.rstrip("/") else None


class StaticDirectory:
    def __init__(self, nodes: Iterable[NodeInfo]) -> None:
        self._nodes = list(nodes)

    async def nodes(self) -> Sequence[NodeInfo]:
        return list(self._nodes)

    async def url_of(self, address: str) -> str:
        for node in self._nodes:
            if node.address.lower() == address.lower():
                return node.url
        raise DirectoryError(f"no node known for operator {address}")

    def to_json(self) -> list[dict[str, str]]:
        return [{"address": n.address, "url": n.url} for n in self._nodes]

    @classmethod
    def from_json(cls, obj: object) -> StaticDirectory:
        if not isinstance(obj, list):
            raise DirectoryError("a node directory is a JSON list of {address, url}")
        try:
            return cls(NodeInfo(str(e["address"]), str(e["url"]).rstrip("/")) for e in obj)
        except (KeyError, TypeError) as err:
            raise DirectoryError(f"malformed node directory entry: {err}") from err

    @classmethod
    def load(cls, path: Path) -> StaticDirectory:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError) as err:
            raise DirectoryError(f"cannot read node directory {path}: {err}") from err
