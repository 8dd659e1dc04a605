"""The libp2p host and its Kademlia DHT, run on their own trio thread, driven from asyncio.

This module is the one bridge between the two event loops: the host is started by ``trio.run`` on a
daemon thread; asyncio code awaits :meth:`P2PHost._call`, which hands a coroutine function to the
trio loop with ``trio.from_thread.run`` from a worker thread, so neither loop ever blocks the other.
Exceptions raised on the trio side surface unchanged on the asyncio side.

What the node does with it: announce a signed peer record (its operator-signed announcement plus
free space, see :mod:`.records`), provide the well-known key of storage nodes and one key per share
it holds; clients find providers of a share, or of the node key, and read their records to learn
operator, HTTP URL, ask and free capacity. A client (publisher, lab, repair agent) runs the same
host without announcing anything: :meth:`P2PHost.peer_records` is what ``market.discovery`` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.keys import KeyPair
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.tools.anyio_service import background_trio_service

from contracts.announcements import Announcement, SignedAnnouncement

from ..errors import NodeError
from . import compat, records, walk

compat.install()
log = logging.getLogger("datasov.node.p2p")
T = TypeVar("T")
CONTENT_TAG = b"datasov/content-key/v1\x00"
PARALLEL = 16  # record requests in flight at once
MIN_CONNECTIONS, LOW_WATERMARK = 4, 8  # the background dialer keeps this many connections open
ASK_TIMEOUT = 3.0  # seconds for a peer to hand over its own record
LOOKUP_TIMEOUT = 10.0  # seconds for a DHT lookup of a record
ADDR_TTL = 600  # seconds: how long addresses learnt from announcements stay in the peerstore
REJOIN_FIRST, REJOIN_MAX = 1.0, 60.0  # seconds between tries at the bootstrap peers (doubling) until one answers


def content_key(name: str) -> str:
    """A provider key: the hex of a sha2-256 multihash of the tagged name.

    py-libp2p hex-decodes such a key to the 34-byte multihash, which its FIND_NODE handler accepts;
    a readable name like ``/datasov/share/v1/<dataset>/<i>`` is longer than 50 bytes and is dropped.
    """
    return "1220" + hashlib.sha256(CONTENT_TAG + name.encode()).hexdigest()


NODES_KEY = content_key("/datasov/nodes/v1")


def connection_config() -> ConnectionConfig:
    """py-libp2p's defaults, but for the background dialer: it dials every known peer until 100
    connections are open (every host of a 64-node network dialled every other one: thousands of
    handshakes, most of a test's or a bench's time). DHT requests dial whom they need."""
    return ConnectionConfig(min_connections=MIN_CONNECTIONS, low_watermark=LOW_WATERMARK)


class P2PError(NodeError):
    code = "p2p"


def share_key(dataset: str, index: int) -> str:
    return content_key(f"/datasov/share/v1/{dataset}/{index}")


class P2PHost:
    def __init__(
        self,
        key_pair: KeyPair,
        *,
        listen: str = "/ip4/127.0.0.1/tcp/0",
        bootstrap: Sequence[str] = (),
        start_timeout: float = 30.0,
        more_peers: Callable[[], Awaitable[Sequence[str]]] | None = None,
        rejoin: tuple[float, float] = (REJOIN_FIRST, REJOIN_MAX),
    ) -> None:
        """``more_peers``: full multiaddrs to try besides ``bootstrap`` when re-joining (the peers
        the chain's announcements name); ``rejoin``: the first and the longest wait between tries."""
        self.key_pair = key_pair
        self.peer_id = ID.from_pubkey(key_pair.public_key).to_base58()
        self._listen = listen
        self._bootstrap = list(bootstrap)
        self._start_timeout = start_timeout
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stop: trio.Event | None = None
        self._thread: threading.Thread | None = None
        self._host: Any = None
        self._dht: KadDHT | None = None
        self.addrs: list[str] = []
        self.bootstrapped: list[str] = []  # the bootstrap peers that answered (at start, or the one re-joined through)
        self._more_peers = more_peers
        self._rejoin_waits = rejoin
        self._rejoin_task: asyncio.Task[None] | None = None
        self._record: bytes | None = None  # the peer record last announced, put again on re-joining
        self._provided: dict[str, None] = {}  # keys provided, in order (provided again on re-joining)
        self.joined = asyncio.Event()
        """Set once a bootstrap peer answered (at start, or later by :meth:`_rejoin`); unset while
        this host is alone (a first node with no bootstrap peers never sets it)."""

    # ------------------------------------------------------------ trio side ----

    async def _main(self) -> None:
        try:
            host = new_host(key_pair=self.key_pair, connection_config=connection_config())
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(host.run(listen_addrs=[multiaddr.Multiaddr(self._listen)]))
                dht = KadDHT(host, DHTMode.SERVER)
                dht.register_validator(records.NAMESPACE, records.PeerRecordValidator())
                await stack.enter_async_context(background_trio_service(dht))
                self._host, self._dht = host, dht
                self.addrs = [str(a) for a in host.get_addrs()]
                self.bootstrapped = [addr for addr in self._bootstrap if await self._reach(addr)]
                if self._bootstrap and not self.bootstrapped:
                    log.warning("no bootstrap peer answered: the DHT is empty until a peer connects to this one")
                self._token = trio.lowlevel.current_trio_token()
                self._stop = trio.Event()
                self._ready.set()
                await self._stop.wait()
                for peer in list(host.get_network().connections):  # close every connection we hold
                    await host.disconnect(peer)
                await host.close()
        except BaseException as err:  # reported to the starting side
            self._failure = err
            self._ready.set()
            if not isinstance(err, Exception):
                raise

    async def _reach(self, addr: str, *, quiet: bool = False) -> bool:
        """Connect to bootstrap peer ``addr``; one that is down (killed, moved) is logged (at debug
        level if ``quiet``: a re-join's tries), not fatal: the chain names the nodes, so a node
        serves without the DHT."""
        try:
            await self._connect(addr)
        except Exception as err:  # py-libp2p raises ExceptionGroups, swarm and multiaddr errors
            log.log(logging.DEBUG if quiet else logging.WARNING, "bootstrap peer %s unreachable: %s", addr, err)
            return False
        return True

    async def _connect(self, addr: str) -> None:
        assert self._host is not None
        assert self._dht is not None
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        await self._host.connect(info)
        await self._dht.add_peer(info.peer_id)

    # --------------------------------------------------------- asyncio side ----

    async def start(self) -> None:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), name="libp2p-trio", daemon=True)
        self._thread.start()
        if not await asyncio.to_thread(self._ready.wait, self._start_timeout):
            raise P2PError("libp2p host did not start in time")
        if self._failure is not None:
            raise P2PError(f"libp2p host failed to start: {self._failure}") from self._failure
        log.info("libp2p peer %s listening on %s", self.peer_id, ", ".join(self.addrs))
        if self.bootstrapped:
            self.joined.set()
        elif self._bootstrap or self._more_peers is not None:
            self._rejoin_task = asyncio.create_task(self._rejoin(), name="libp2p-rejoin")

    async def _rejoin(self) -> None:
        """Try the bootstrap peers and those :attr:`_more_peers` names, waiting longer after each
        round (doubling, up to the longest wait), until one answers; then put this host's record
        and provider keys again (announced while alone, they reached nobody) and set :attr:`joined`."""
        wait, longest = self._rejoin_waits
        tries = 0
        while True:
            await asyncio.sleep(wait)  # backoff between rounds of dials
            tries += 1
            candidates = list(self._bootstrap)
            if self._more_peers is not None:
                try:
                    candidates += [a for a in await self._more_peers() if a not in candidates]
                except Exception as err:  # the chain down for a moment: the bootstrap peers alone this round
                    log.debug("no peers from the chain this round: %s", err)
            for addr in candidates:
                if f"/p2p/{self.peer_id}" in addr:
                    continue  # ourselves, as the chain names us
                if await self._call(functools.partial(self._reach, addr, quiet=True)):
                    self.bootstrapped = [addr]
                    log.info("joined the DHT through %s (after %d tries)", addr, tries)
                    await self._republish()
                    self.joined.set()
                    return
            wait = min(2 * wait, longest)

    async def _republish(self) -> None:
        assert self._dht is not None
        try:
            if self._record is not None:
                await self._call(self._dht.put_value, records.dht_key(self.peer_id), self._record)
            for key in list(self._provided):
                await self._call(self._dht.provide, key)
        except Exception as err:  # put again on the node's next announcement
            log.warning("could not announce again after joining the DHT: %s", err)

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self._token is None:
            raise P2PError("libp2p host is not running")
        return await asyncio.to_thread(trio.from_thread.run, fn, *args, trio_token=self._token)

    async def stop(self) -> None:
        if self._rejoin_task is not None:
            self._rejoin_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rejoin_task
            self._rejoin_task = None
        if self._token is not None and self._stop is not None:
            await asyncio.to_thread(trio.from_thread.run_sync, self._stop.set, trio_token=self._token)
            self._token = None
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
            self._thread = None

    async def connect(self, addr: str) -> None:
        """Dial a peer by its full multiaddr (…/p2p/<peer id>) and add it to the routing table."""
        await self._call(self._connect, addr)

    def announcement(
        self, *, operator: str, http_url: str, chain_id: int, capacity: int, ask: int = 0, region: str = ""
    ) -> Announcement:
        """This peer's announcement (id and listen addresses filled in), issued now; the operator signs it."""
        addrs = tuple(a.split("/p2p/", 1)[0] for a in self.addrs)[:8]
        return Announcement(
            operator=operator,
            http_url=http_url,
            chain_id=chain_id,
            capacity=capacity,
            ask=ask,
            region=region,
            peer_id=self.peer_id,
            multiaddrs=addrs,
        ).with_time()

    async def announce(self, signed: SignedAnnouncement, *, free: int) -> records.PeerRecord:
        """Publish this node's peer record (its signed announcement, ``free`` bytes) and provide the nodes key."""
        raw = records.make_record(signed, self.key_pair, free=free)
        assert self._dht is not None
        self._record = raw
        self._provided[NODES_KEY] = None
        await self._call(self._dht.put_value, records.dht_key(self.peer_id), raw)
        await self._call(self._dht.provide, NODES_KEY)
        return records.open_record(raw)

    async def provide_share(self, dataset: str, index: int) -> None:
        assert self._dht is not None
        key = share_key(dataset, index)
        self._provided[key] = None
        await self._call(self._dht.provide, key)

    async def record_of(self, peer_id: str) -> records.PeerRecord | None:
        """A peer's record from the DHT, verified; None if absent or invalid."""
        assert self._dht is not None
        raw = await self._call(self._dht.get_value, records.dht_key(peer_id))
        return None if raw is None else _opened(raw, peer_id)

    async def _raw_record(self, peer: ID) -> bytes | None:
        """Trio side: the peer's record as the peer itself holds it (one request), else from the DHT.

        The peer's own copy is the freshest; the DHT's (the closest peers to the record's key keep
        one) is what remains of a peer that does not answer now, and says when it was last seen.
        """
        assert self._dht is not None
        key = records.dht_key(peer.to_base58())
        raw: bytes | None = None
        if self.host_knows(peer):
            with trio.move_on_after(ASK_TIMEOUT):
                got = await self._dht.value_store._get_from_peer(peer, key.encode())
                raw = got if isinstance(got, bytes) else None
        if raw is None:
            with trio.move_on_after(LOOKUP_TIMEOUT):
                raw = await self._dht.get_value(key)
        return raw

    def host_knows(self, peer: ID) -> bool:
        return bool(self._host is not None and self._host.get_peerstore().addrs(peer))

    async def _raw_records(self, known: Mapping[str, Sequence[str]], walk_all: bool) -> dict[str, bytes]:
        """Trio side: the raw record of every peer in ``known`` (peer id: multiaddrs) and, with
        ``walk_all``, of every peer a walk of the key space finds (see :mod:`.walk`); at most
        :data:`PARALLEL` requests at once."""
        assert self._dht is not None
        assert self._host is not None
        dht, store = self._dht, self._host.get_peerstore()
        peers: set[ID] = set()
        for peer_id, addrs in known.items():
            try:
                peer = ID.from_base58(peer_id)
                if addrs:
                    store.add_addrs(peer, [multiaddr.Multiaddr(a) for a in addrs], ADDR_TTL)
            except Exception as err:  # a bad id or address in an announcement: that peer only
                log.warning("cannot look up peer %r at %s: %s", peer_id, list(addrs), err)
                continue
            peers.add(peer)
        if walk_all:
            peers |= await walk.walk(dht.peer_routing.find_closest_peers_network)
            peers.update(dht.routing_table.get_peer_ids())
        peers.discard(self._host.get_id())
        found: dict[str, bytes] = {}
        limiter = trio.CapacityLimiter(PARALLEL)

        async def one(peer: ID) -> None:
            async with limiter:
                try:
                    raw = await self._raw_record(peer)
                except Exception as err:  # one peer's failure is that peer's only
                    log.debug("no record from peer %s: %r", peer, err)
                    return
            if raw is not None:
                found[peer.to_base58()] = raw

        async with trio.open_nursery() as nursery:
            for peer in sorted(peers, key=lambda p: p.to_bytes()):
                nursery.start_soon(one, peer)
        return found

    async def find_share(self, dataset: str, index: int) -> list[records.PeerRecord]:
        """Records of the nodes that say they hold this share."""
        assert self._dht is not None
        providers = await self._call(self._dht.find_providers, share_key(dataset, index))
        known = {info.peer_id.to_base58(): [str(a) for a in info.addrs] for info in providers}
        return await self._opened_records(known)

    async def _opened_records(
        self, known: Mapping[str, Sequence[str]], *, walk_all: bool = False
    ) -> list[records.PeerRecord]:
        raws = await self._call(self._raw_records, known, walk_all) if known or walk_all else {}
        return [r for peer, raw in sorted(raws.items()) if (r := _opened(raw, peer)) is not None]

    async def find_nodes(
        self, *, min_free: int = 0, peers: Mapping[str, Sequence[str]] | None = None
    ) -> list[records.PeerRecord]:
        """Records of storage nodes with at least ``min_free`` bytes free (as last announced).

        ``peers`` (peer id: multiaddrs, e.g. from the chain's announcements): look up exactly
        these; else every peer a walk of the DHT's key space reaches (all of them, on a sound DHT).
        """
        found = await self._opened_records(peers or {}, walk_all=not peers)
        return [r for r in found if r.free >= min_free]

    async def peer_records(self, peers: Mapping[str, Sequence[str]] | None = None) -> list[records.PeerRecord]:
        """Verified records of ``peers`` or of every node found (``market.discovery.PeerSource``)."""
        return await self.find_nodes(peers=peers)

    @property
    def full_addrs(self) -> list[str]:
        return [f"{a}/p2p/{self.peer_id}" if "/p2p/" not in a else a for a in self.addrs]


def _opened(raw: bytes, peer_id: str) -> records.PeerRecord | None:
    """The verified record ``raw`` if it is ``peer_id``'s own; None (and a warning) if not."""
    try:
        record = records.open_record(raw)
    except records.RecordError as err:
        log.warning("ignoring peer record of %s: %s", peer_id, err)
        return None
    if record.peer_id != peer_id:
        log.warning("ignoring peer record of %s: it is peer %s's", peer_id, record.peer_id)
        return None
    return record
