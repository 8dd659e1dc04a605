"""The directory every client of a network uses: the chain, and the DHT when the network has bootstrap peers.

:func:`open_directory` is the one constructor (the CLI's ``open_chain`` calls it): with no
bootstrap peers, :class:`market.chain_directory.ChainDirectory` alone; with some, a
:class:`market.discovery.NetworkDirectory` over that chain view and a libp2p client host (its own
throwaway key, announcing nothing) bootstrapped to them. The chain stays authoritative for who is
staked; the DHT adds peer ids, free space and when each node last said so. A DHT that cannot be
joined (no bootstrap peer answers) is logged and the chain is used alone: a client never fails
for want of the DHT.

It lives here, not in market: market may not import ``storage_node.p2p`` (docs/layers.md). py-libp2p
is imported only when there are bootstrap peers (chain-only commands stay light).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from contracts.chain import Chain
from market.chain_directory import ChainDirectory
from market.directory import Directory

log = logging.getLogger("datasov.dht")
CLIENT_LISTEN = "/ip4/127.0.0.1/tcp/0"  # a client answers no one: it dials out, replies come back on its own streams
DHT_MAX_AGE = 10.0  # seconds a NetworkDirectory's view is reused before the DHT is asked again


@contextlib.asynccontextmanager
async def open_directory(
    chain: Chain, bootstrap: Sequence[str] = (), *, listen: str = CLIENT_LISTEN
) -> AsyncIterator[Directory]:
    """The network's nodes as ``chain`` and (with ``bootstrap`` peers) the DHT give them; the
    libp2p client host, if one was started, is stopped on exit."""
    on_chain = ChainDirectory(chain)
    if not bootstrap:
        yield on_chain
        return
    from libp2p.crypto.ed25519 import create_new_key_pair

    from market.discovery import NetworkDirectory
    from storage_node.p2p.host import P2PHost

    host = P2PHost(create_new_key_pair(), listen=listen, bootstrap=list(bootstrap))
    try:
        await host.start()
    except Exception as err:  # the DHT is a freshness hint; the chain alone still lists every staked node
        log.warning("cannot join the DHT through %s (%s): using the chain alone", ", ".join(bootstrap), err)
        await host.stop()
        joined = False
    else:
        joined = True
    if not joined:
        yield on_chain
        return
    try:
        yield NetworkDirectory(on_chain, host, max_age=DHT_MAX_AGE)
    finally:
        await host.stop()
