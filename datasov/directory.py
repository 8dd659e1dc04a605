"""The directory every client of a network uses: the chain, and the DHT when the network has bootstrap peers.

:func:`open_directory` is the one constructor (the CLI's ``open_chain`` calls it): with no
bootstrap peers, :class:`market.chain_directory.ChainDirectory` alone; with some, a
:class:`DHTDirectory`: on first use, a :class:`market.discovery.NetworkDirectory` over that chain
view and a libp2p client host (its own throwaway key, announcing nothing) bootstrapped to them.
The chain stays authoritative for who is staked; the DHT adds peer ids, free space and when each
node last said so. A DHT that cannot be joined (no bootstrap peer answers) is logged and the
chain is used alone: a client never fails for want of the DHT.

It lives here, not in market: market may not import ``storage_node.p2p`` (docs/layers.md). py-libp2p
is imported only when a command first asks for nodes (chain-only commands stay light).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from contracts.chain import Chain
from market.chain_directory import ChainDirectory
from market.directory import NodeInfo

if TYPE_CHECKING:
    from market.discovery import NetworkDirectory
    from storage_node.p2p.host import P2PHost

log = logging.getLogger("datasov.dht")
CLIENT_LISTEN = "/ip4/127.0.0.1/tcp/0"  # a client answers no one: it dials out, replies come back on its own streams
DHT_MAX_AGE = 10.0  # seconds a NetworkDirectory's view is reused before the DHT is asked again


class DHTDirectory:
    """A :class:`market.directory.Directory` that joins the DHT on first use: commands that open
    the chain but never ask for nodes (most of them) neither import py-libp2p (seconds on a loaded
    machine) nor start a host. Until then, and for good if the DHT cannot be joined, it is the chain's."""

    def __init__(self, chain: ChainDirectory, bootstrap: Sequence[str], *, listen: str = CLIENT_LISTEN) -> None:
        self.chain = chain
        self.bootstrap = list(bootstrap)
        self.listen = listen
        self._network: NetworkDirectory | None = None
        self._host: P2PHost | None = None
        self._tried = False

    async def network(self) -> NetworkDirectory | None:
        """The chain + DHT directory, the libp2p client started on the first call; None if no
        bootstrap peer answers (logged once: the chain is then used alone)."""
        if self._tried:
            return self._network
        self._tried = True
        from libp2p.crypto.ed25519 import create_new_key_pair

        from market.discovery import NetworkDirectory
        from storage_node.p2p.host import P2PHost

        host = P2PHost(create_new_key_pair(), listen=self.listen, bootstrap=self.bootstrap)
        try:
            await host.start()
        except Exception as err:  # the DHT is a freshness hint; the chain alone still lists every staked node
            log.warning("cannot join the DHT through %s (%s): using the chain alone", ", ".join(self.bootstrap), err)
            await host.stop()
            return None
        self._host = host
        self._network = NetworkDirectory(self.chain, host, max_age=DHT_MAX_AGE)
        return self._network

    async def nodes(self) -> Sequence[NodeInfo]:
        network = await self.network()
        return await (network or self.chain).nodes()

    async def url_of(self, address: str) -> str:
        network = await self.network()
        return await (network or self.chain).url_of(address)

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
