"""A storage node's lifecycle: identity, store (recovered at start), HTTP API; start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from contracts.announcements import Announcement, SignedAnnouncement

from .api.app import Authorizer, NodeState, allow_any, make_app
from .api.gate import ConnectionGate, GatedSite
from .authorize import DeletionGuard, collect_ended_deals
from .chainview import EpochChain
from .identity import load_or_create_operator
from .p2p.chainpeers import AnnouncementsChain, chain_peers
from .p2p.host import P2PHost
from .p2p.identity import load_or_create_p2p_key
from .store.at_rest import REVERIFY_AFTER
from .store.shares import ShareStore

log = logging.getLogger("datasov.node")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    home: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    capacity: int = 50 << 30
    max_share_size: int = 64 << 30
    max_uploads: int = 8
    idle_timeout: float = 30.0  # seconds an upload may go without a byte
    upload_grace: float = 30.0  # an upload's deadline: this many seconds plus its size at min_upload_rate
    min_upload_rate: int = 256 * 1024  # bytes per second
    header_timeout: float = 15.0  # seconds to send a request's headers, and to idle between requests
    max_connections: int = 1024  # open HTTP connections, node-wide (kept under the fd limit)
    max_connections_per_ip: int = 256
    p2p_listen: str | None = None  # e.g. "/ip4/127.0.0.1/tcp/0"; None: no libp2p
    bootstrap: tuple[str, ...] = ()
    gc_interval: float = 300.0  # seconds between garbage collections; 0: never on its own
    ask: int = 0  # token base units per GiB per epoch (announced)
    region: str = ""  # announced free label
    chain_id: int = 0  # the chain its announcement is for (0: none, development)
    summary_interval: float = 300.0  # seconds between the INFO summaries of what the node did; 0: none
    announce_at_start: bool = True  # False: the caller calls start_announcing (with the on-chain record)
    reverify_after: float = REVERIFY_AFTER  # seconds a block verified at rest is trusted (store/at_rest.py); 0: never
    reannounce_every: float = 60.0  # seconds between re-announcements of the free space after stored shares; 0: each


def freeze_startup_objects() -> None:
    """For a process that is one node: after start-up, collect once and move every object left
    (modules, web3's and libp2p's tables, the app: some 180,000) out of the garbage collector's
    view. A full collection then walks only what serving allocates since, instead of stalling the
    event loop on all of them (1.1 s measured on this loaded machine, about 50 ms idle). Not for a
    process that starts and stops many nodes (tests): frozen objects are never freed."""
    gc.collect()
    gc.freeze()


class StorageNode:
    """``await node.start()`` ... ``await node.stop()``; ``node.url`` once started."""

    def __init__(
        self, config: NodeConfig, *, authorize: Authorizer = allow_any, chain: EpochChain | None = None
    ) -> None:
        self.config = config
        self.operator = load_or_create_operator(config.home)
        self.address = self.operator.address
        self.store: ShareStore | None = None
        self._authorize = authorize
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.p2p: P2PHost | None = None
        self.chain = chain
        self._gc_task: asyncio.Task[None] | None = None
        self._summary_task: asyncio.Task[None] | None = None
        self._announce_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._reannounce: asyncio.Task[None] | None = None
        self._reannounce_due = False  # a share was stored since the running re-announcement read the free space
        self._announced_at = -float("inf")  # loop time of the last announcement
        self.state: NodeState | None = None
        self.gate: ConnectionGate | None = None
        self.announcement: SignedAnnouncement | None = None
        """What this node announces (on-chain and as its DHT peer record); built at start if not set."""

    async def start(self) -> None:
        cfg = self.config
        self.store = ShareStore(cfg.home, capacity=cfg.capacity, reverify_after=cfg.reverify_after)
        report = await asyncio.to_thread(self.store.recover)
        if any(report.values()):
            log.warning("recovered %s", report)
        state = NodeState(
            self.store,
            self.address,
            authorize=self._authorize,
            max_share_size=cfg.max_share_size,
            idle_timeout=cfg.idle_timeout,
            upload_grace=cfg.upload_grace,
            min_upload_rate=cfg.min_upload_rate,
            max_uploads=cfg.max_uploads,
            on_stored=self._announce_share,
        )
        if self.chain is not None:
            state.may_delete = DeletionGuard(self.chain, self.address)
        self.state = state
        await self.open_http(cfg.port)
        log.info("node %s listening on %s", self.address, self.url)
        if cfg.p2p_listen is not None:
            chain = self.chain if isinstance(self.chain, AnnouncementsChain) else None
            self.p2p = P2PHost(
                load_or_create_p2p_key(cfg.home),
                listen=cfg.p2p_listen,
                bootstrap=cfg.bootstrap,
                more_peers=functools.partial(chain_peers, chain) if chain is not None else None,
            )
            await self.p2p.start()
            if cfg.announce_at_start:
                self.start_announcing()
        if cfg.gc_interval > 0:
            self._gc_task = asyncio.create_task(self._gc_loop(), name="datasov-gc")
        if cfg.summary_interval > 0:
            self._summary_task = asyncio.create_task(self._summary_loop(), name="datasov-summary")

    async def open_http(self, port: int | None = None) -> None:
        """Serve the API (again, after :meth:`close_http`: same port unless told otherwise)."""
        assert self.state is not None
        cfg = self.config
        if port is None:
            port = int(self.url.rsplit(":", 1)[1]) if self.url else cfg.port
        self._runner = web.AppRunner(
            make_app(self.state),
            access_log=None,
            handler_cancellation=True,
            keepalive_timeout=cfg.header_timeout,  # closes idle and half-sent-header connections too
        )
        await self._runner.setup()
        self.gate = ConnectionGate(max_connections=cfg.max_connections, max_per_ip=cfg.max_connections_per_ip)
        site = GatedSite(self._runner, cfg.host, port, gate=self.gate)
        await site.start()
        self.url = f"http://{cfg.host}:{site.port}"

    async def close_http(self) -> None:
        """Stop answering HTTP while the store, prover and libp2p keep running (a network partition)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def collect_garbage(self) -> int:
        """Delete expired shares, and with a chain the shares of deals that are over."""
        assert self.store is not None
        removed = await self.store.collect_garbage()
        if self.chain is not None:
            removed += await collect_ended_deals(self.store, self.chain)
        return removed

    async def _gc_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.gc_interval)
            try:
                removed = await self.collect_garbage()
                if removed:
                    log.info("garbage collection removed %d share(s)", removed)
                    await self.announce()
            except Exception:  # keep serving; try again next round
                log.exception("garbage collection failed")

    def start_announcing(self, signed: SignedAnnouncement | None = None) -> None:
        """Publish this node's DHT record (``signed``: the announcement it made on-chain; else one made
        now) and provide its shares, in the background: the node serves while the lookups run."""
        if signed is not None:
            self.announcement = signed
        if self.p2p is not None and self._announce_task is None:
            self._announce_task = asyncio.create_task(self._announce_at_start(), name="datasov-announce")

    async def _announce_at_start(self) -> None:
        assert self.p2p is not None
        assert self.store is not None
        try:
            await self.announce()
            for record in await self.store.records():  # shares kept across a restart are provided again
                if record.state == "ok":
                    await self.p2p.provide_share(record.dataset, record.idx)
        except Exception:  # announced again on the next stored share or garbage collection
            log.exception("could not announce this node in the DHT")

    async def announced(self) -> None:
        """Wait until the announcement made at start is done (tests and benchmarks)."""
        if self._announce_task is not None:
            await asyncio.shield(self._announce_task)

    async def log_summary(self) -> None:
        """One INFO line: shares held, bytes, what happened since the last summary, proofs."""
        if self.store is None or self.state is None:
            return
        records = await self.store.records()
        used = await self.store.used()
        shares = sum(r.state == "ok" for r in records)
        log.info("summary: %s", self.state.activity.summary(shares=shares, used=used, capacity=self.store.capacity))

    async def _summary_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.summary_interval)
            try:
                await self.log_summary()
            except Exception:  # a summary is never worth stopping the node for
                log.exception("could not write the activity summary")

    def make_announcement(self) -> SignedAnnouncement:
        """This node's announcement as it runs now (URL, peer id, multiaddrs, terms), signed."""
        cfg = self.config
        capacity = self.store.capacity if self.store is not None else cfg.capacity
        if self.p2p is not None:
            terms = self.p2p.announcement(
                operator=self.address,
                http_url=self.url,
                chain_id=cfg.chain_id,
                capacity=capacity,
                ask=cfg.ask,
                region=cfg.region,
            )
        else:
            terms = Announcement(
                operator=self.address,
                http_url=self.url,
                chain_id=cfg.chain_id,
                capacity=capacity,
                ask=cfg.ask,
                region=cfg.region,
            ).with_time()
        return terms.sign(self.operator)

    async def announce(self) -> None:
        """(Re)publish this node's signed peer record with its current free space."""
        if self.p2p is not None and self.store is not None:
            current = self.announcement
            if (
                current is None
                or current.announcement.http_url != self.url
                or current.announcement.peer_id != self.p2p.peer_id
            ):
                self.announcement = current = self.make_announcement()
            self._announced_at = asyncio.get_running_loop().time()
            free = await self.store.free()
            await self.p2p.announce(current, free=free)

    async def _announce_share(self, dataset: str, index: int) -> None:
        """After a share is stored: provide it and re-announce, in the background (a DHT lookup can
        take seconds; the upload's answer must not wait for it)."""
        if self.p2p is not None:
            task = asyncio.create_task(self._provide(dataset, index), name=f"datasov-provide-{index}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _provide(self, dataset: str, index: int) -> None:
        assert self.p2p is not None
        try:
            await self.p2p.provide_share(dataset, index)
        except Exception:  # stored is stored: discovery catches up at the next announcement
            log.exception("could not announce %s/%s in the DHT", dataset, index)
        self._reannounce_soon()

    def _reannounce_soon(self) -> None:
        """Re-announce the free space after a stored share, at most once per ``reannounce_every``
        seconds: the shares stored meanwhile share one trailing announcement. Each is a DHT
        ``put_value`` and ``provide`` (lookups and requests to the closest peers, on every node they
        reach): with one per stored share, the DHT was a third of a node's CPU during a publish.
        The share itself is provided at once; free space is advisory (placement asks the node)."""
        self._reannounce_due = True
        if self._reannounce is None or self._reannounce.done():
            self._reannounce = asyncio.create_task(self._reannounce_when_due(), name="datasov-reannounce")
            self._background.add(self._reannounce)
            self._reannounce.add_done_callback(self._background.discard)

    async def _reannounce_when_due(self) -> None:
        loop = asyncio.get_running_loop()
        while self._reannounce_due:
            wait = self._announced_at + self.config.reannounce_every - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._reannounce_due = False  # a share stored from here on needs another round
            try:
                await self.announce()
            except Exception:  # announced again on the next stored share or garbage collection
                log.exception("could not re-announce this node in the DHT")

    async def stop(self) -> None:
        for task in (self._gc_task, self._summary_task, self._announce_task, *self._background):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._gc_task = self._summary_task = self._announce_task = None
        if self.p2p is not None:
            await self.p2p.stop()
            self.p2p = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.store is not None:
            self.store.close()
            self.store = None
