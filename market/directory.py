"""Where the storage nodes are: a narrow view the publisher, buyer and repair agent need.

A :class:`Directory` maps operator addresses to HTTP URLs. :class:`StaticDirectory` is a list
(the local network writes one; a deployment can ship one); :class:`market.discovery.NetworkDirectory`
combines the chain's announcements (authoritative) with the libp2p DHT's peer records (fresh).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .errors import MarketError


class DirectoryError(MarketError):
    """A directory file is missing or malformed, or a node is not in it."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    address: str  # the operator's Ethereum address (checksummed)
    url: str  # http://host:port of its API


class Directory(Protocol):
    async def nodes(self) -> Sequence[NodeInfo]:
        """Every node this directory knows about (alive or not)."""
        ...

    async def url_of(self, address: str) -> str:
        """The API URL of an operator's node; raises :class:`DirectoryError` if unknown."""
        ...


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
