"""What the web app holds for its lifetime: the home, the keystore, the chain, the node client.

The keystore is opened once, in this process, when ``datasov ui`` starts; private keys never go
into a page. The chain is connected on first use and again after a failure, so the app starts
(and shows a "chain unreachable" page) while the chain is down, and recovers when it is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from contracts.chain import Chain
from contracts.models import Deployment
from market.directory import Directory
from market.keystore import Keystore
from storage_node.client import NodeClient

from .jobs import Jobs

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

Connect = Callable[[], Awaitable[Chain]]


@dataclass
class NodeSide:
    """The storage node this user operates (``--node-home``): its operator key and HTTP URL."""

    home: Path
    operator: LocalAccount
    url: str | None


@dataclass
class WebState:
    home: Path
    keystore: Keystore
    directory: Directory
    connect: Connect
    rpc: str = ""
    node: NodeSide | None = None
    jobs: Jobs = field(default_factory=Jobs)
    client: NodeClient = field(default_factory=lambda: NodeClient(timeout=10, retries=1))
    _chain: Chain | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def address(self) -> str:
        return str(self.keystore.account.address)

    @property
    def downloads(self) -> Path:
        return self.home / "downloads"

    async def chain(self) -> Chain:
        """The connected chain (connecting now if needed); raises ``ChainUnavailable``."""
        async with self._lock:
            if self._chain is None:
                self._chain = await self.connect()
            return self._chain

    @property
    def deployment(self) -> Deployment | None:
        return self._chain.deployment if self._chain is not None else None

    async def close(self) -> None:
        await self.jobs.cancel_all()
        await self.client.close()


STATE = web.AppKey("state", WebState)
