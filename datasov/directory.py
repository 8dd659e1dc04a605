"""The directory every client of a network uses: the chain first, the DHT on demand.

:func:`open_directory` is the one constructor (the CLI's ``open_chain`` calls it): with no
bootstrap peers, :class:`market.chain_directory.ChainDirectory` alone; with some, a
:class:`DHTDirectory`, which answers :meth:`~DHTDirectory.nodes` and :meth:`~DHTDirectory.url_of`
from the chain (every staked node's announced URL, peer id and terms: all a client needs to place,
fetch or repair) and joins the DHT only when it adds something the caller needs:

- a node whose chain URL did not answer (the caller says so: :meth:`DHTDirectory.unreachable`, through
  :func:`market.directory.moved`): the chain is read again, then that node's own DHT record is asked
  for; a newer announcement signed by its operator (it moved, its on-chain re-announcement not read
  yet) gives its URL from then on;
- a caller that asks for what only the DHT says (free space, when each node last said so, who has a
  record): :meth:`DHTDirectory.network` (``datasov nodes --dht``).

Joining is a :class:`market.discovery.NetworkDirectory` over the same chain view and a libp2p client
host (its own throwaway key, announcing nothing) bootstrapped to the peers. The chain stays
authoritative for who is staked. A DHT that cannot be joined (no bootstrap peer answers) is logged
and the chain is used alone: a client never fails for want of the DHT.

It lives here, not in market: market may not import ``storage_node.p2p`` (docs/layers.md). py-libp2p
(about a second of imports) is imported only when the DHT is joined: commands that only need the
chain's URLs never load it (``tests/market/test_discovery.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from contracts.chain import Chain
from market.chain_directory import ChainDirectory
from market.directory import DirectoryError, NodeInfo

if TYPE_CHECKING:
    from market.discovery import NetworkDirectory
    from storage_node.p2p.host import P2PHost

log = logging.getLogger("datasov.dht")
CLIENT_LISTEN = "/ip4/127.0.0.1/tcp/0"  # a client answers no one: it dials out, replies come back on its own streams
DHT_MAX_AGE = 10.0  # seconds a NetworkDirectory's view is reused before the DHT is asked again


class DHTDirectory:
    """A :class:`market.directory.Directory` on the chain that joins the DHT on demand (see the
    module doc); also :class:`market.directory.Rediscovers`."""

    def __init__(self, chain: ChainDirectory, bootstrap: Sequence[str], *, listen: str = CLIENT_LISTEN) -> None:
        self.chain = chain
        self.bootstrap = list(bootstrap)
        self.listen = listen
        self._network: NetworkDirectory | None = None
        self._host: P2PHost | None = None
        self._tried = False
        self._joining = asyncio.Lock()  # callers that find nodes unreachable at once join one host
        self._moved: dict[str, NodeInfo] = {}  # operator (lower) -> its newer DHT announcement
        self._asked: dict[str, float] = {}  # operator (lower) -> when its DHT record was last asked for

    async def network(self) -> NetworkDirectory | None:
        """The chain + DHT directory, the libp2p client started on the first call; None if no
        bootstrap peer answers (logged once: the chain is then used alone)."""
        async with self._joining:
            return await self._join()

    async def _join(self) -> NetworkDirectory | None:
        if self._tried:
            return self._network
        self._tried = True
        from libp2p.crypto.ed25519 import create_new_key_pair

        from market.discovery import NetworkDirectory
        from storage_node.p2p.host import P2PError, P2PHost

        host = P2PHost(create_new_key_pair(), listen=self.listen, bootstrap=self.bootstrap)
        try:
            await host.start()
            if not host.bootstrapped:  # a node starts without its peers; a client has nothing to ask then
                raise P2PError("no bootstrap peer answered")
        except Exception as err:  # the DHT is a freshness hint; the chain alone still lists every staked node
            log.warning("cannot join the DHT through %s (%s): using the chain alone", ", ".join(self.bootstrap), err)
            await host.stop()
            return None
        self._host = host
        self._network = NetworkDirectory(self.chain, host, max_age=DHT_MAX_AGE)
        return self._network

    def _current(self, node: NodeInfo) -> NodeInfo:
        """``node`` as the chain lists it, or its newer DHT announcement while the chain's is older."""
        newer = self._moved.get(node.address.lower())
        if newer is None or newer.issued_at <= node.issued_at:
            return node
        return replace(node, url=newer.url, peer_id=newer.peer_id, multiaddrs=newer.multiaddrs)

    async def nodes(self) -> Sequence[NodeInfo]:
        return [self._current(n) for n in await self.chain.nodes()]

    async def url_of(self, address: str) -> str:
        url = await self.chain.url_of(address)
        for node in await self.chain.nodes():
            if node.address.lower() == address.lower():
                return self._current(node).url
        return url

    async def unreachable(self, address: str) -> str | None:
        """The node at the URL this directory gave for ``address`` did not answer: the chain is read
        again, and if its URL there is unchanged, the node's DHT record is asked for (the DHT joined
        now if it was not; once per :data:`DHT_MAX_AGE` seconds per node). Its URL if that changed,
        else None."""
        key = address.lower()
        try:
            before = await self.url_of(address)
        except DirectoryError:
            before = None
        if await self.chain.unreachable(address) is not None:
            self._moved.pop(key, None)  # the chain says where it is now
            return await self.url_of(address)
        asked = self._asked.get(key)
        if asked is not None and time.monotonic() - asked < DHT_MAX_AGE:
            return None
        network = await self.network()
        if network is None:
            return None
        self._asked[key] = time.monotonic()
        view = await network.view_of(address)
        if view is None or not view.in_dht:
            return None
        self._moved[key] = view.info
        after = await self.url_of(address)
        return after if after != before else None

    async def close(self) -> None:
        if self._host is not None:
            await self._host.stop()
            self._host = None


@contextlib.asynccontextmanager
async def open_directory(
    chain: Chain, bootstrap: Sequence[str] = (), *, listen: str = CLIENT_LISTEN
) -> AsyncIterator[ChainDirectory | DHTDirectory]:
    """The network's nodes as ``chain`` and (with ``bootstrap`` peers) the DHT give them: a
    :class:`DHTDirectory` (joined on first use; its libp2p client stopped on exit) or, without
    bootstrap peers, the chain's :class:`ChainDirectory`."""
    on_chain = ChainDirectory(chain)
    if not bootstrap:
        yield on_chain
        return
    directory = DHTDirectory(on_chain, bootstrap, listen=listen)
    try:
        yield directory
    finally:
        await directory.close()
