"""The repair agent: keeps every share of a deal on a healthy node, without ever holding the data key.

For each deal it watches (by default the deals of the owner it runs for), it checks every share:
faulty on-chain (a missed proof was reported), its node gone from the directory or not answering,
or answering with the wrong size or root. When fewer than ``threshold`` shares are healthy (default
k + 2), it rebuilds the lost ones from k healthy shares (ciphertext only: every block verified
against the committed roots, decoded and re-encoded; the rebuilt share must hash to its committed
root), moves each to a new node on-chain (``replaceProvider``, allowed for faulty or never-accepted
shares), uploads it there with a signed order and leaves the manifest. The new node accepts and
proves it like any other share. Nothing on-chain is re-committed: the share root does not change.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from contracts import errors as chain_errors
from contracts.chain import Chain
from contracts.loop import Ticking
from erasure import localfs
from erasure.decoding import rebuild
from erasure.errors import ErasureError
from erasure.manifest import Manifest
from market.buyer import fetch_manifest
from market.directory import Directory, DirectoryError, NodeInfo, moved
from market.placement import PlacementPolicy, choose_nodes, network_of
from market.publisher import upload_share
from market.remote_source import RemoteShareSource
from storage_node.client import NodeClient
from storage_node.errors import NodeError

from .errors import MarketError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger("datasov.repair")


class RepairError(MarketError):
    """A deal's lost shares could not be rebuilt or placed (``data lost`` below k healthy shares)."""


@dataclass
class RepairReport:
    deal_id: int
    healthy: list[int] = field(default_factory=list)
    unhealthy: dict[int, str] = field(default_factory=dict)
    repaired: dict[int, str] = field(default_factory=dict)  # share -> new node URL
    failed: dict[int, str] = field(default_factory=dict)
    bytes_fetched: int = 0
    bytes_rebuilt: int = 0
    seconds: float = 0.0


class RepairAgent(Ticking):
    def __init__(
        self,
        chain: Chain,
        owner: LocalAccount,
        directory: Directory,
        client: NodeClient,
        *,
        workdir: Path,
        threshold: int | None = None,
        poll: float = 5.0,
        placement: PlacementPolicy = PlacementPolicy(),
    ) -> None:
        self.placement = placement
        self.chain = chain
        self.owner = owner
        self.directory = directory
        self.client = client
        self.workdir = workdir
        self.threshold = threshold
        self.poll = poll
        self.reports: list[RepairReport] = []
        self._manifests: dict[int, Manifest] = {}

    async def _manifest(self, deal_id: int, urls: list[str]) -> Manifest:
        if deal_id not in self._manifests:
            deal = await self.chain.get_deal(deal_id)
            dataset = await self.chain.get_dataset(deal.dataset_id)
            self._manifests[deal_id] = await fetch_manifest(self.client, dict(enumerate(urls)), dataset.manifest_hash)
        return self._manifests[deal_id]

    async def check(self, deal_id: int) -> tuple[dict[int, str], dict[int, str]]:
        """(share -> node URL for the healthy shares, share -> reason for the others)."""
        deal = await self.chain.get_deal(deal_id)
        dataset = await self.chain.get_dataset(deal.dataset_id)
        urls: dict[int, str] = {}
        providers: dict[int, str] = {}
        bad: dict[int, str] = {}
        for i, share in enumerate(await self.chain.get_shares(deal_id)):
            if share.faulty:
                bad[i] = "faulty on-chain (missed a proof)"
                continue
            try:
                urls[i] = await self.directory.url_of(share.provider)
                providers[i] = share.provider
            except DirectoryError:
                bad[i] = "node not in the directory"
        man = await self._manifest(deal_id, list(urls.values()))
        healthy: dict[int, str] = {}
        for i, url in urls.items():
            try:
                size, root = await self.client.head(url, dataset.manifest_hash.hex(), i)
            except NodeError as err:
                found = await moved(self.directory, providers[i], url)  # it may have moved (chain, DHT)
                if found is None:
                    bad[i] = f"spot check failed: {err}"
                    continue
                try:
                    size, root = await self.client.head(found, dataset.manifest_hash.hex(), i)
                except NodeError as again:
                    bad[i] = f"spot check failed at {url} and at {found}: {again}"
                    continue
                url = found
            if (size, root) != (man.share_size, man.share_roots[i]):
                bad[i] = "node reports a different size or root"
                continue
            healthy[i] = url
        return healthy, bad

    async def repair(self, deal_id: int) -> RepairReport:
        """Check one deal and rebuild its lost shares if fewer than the threshold are healthy."""
        start = time.perf_counter()
        report = RepairReport(deal_id)
        healthy, bad = await self.check(deal_id)
        report.healthy, report.unhealthy = sorted(healthy), bad
        man = await self._manifest(deal_id, list(healthy.values()))
        threshold = self.threshold if self.threshold is not None else min(man.k + 2, man.n)
        if len(healthy) >= threshold or not bad:
            return report
        if len(healthy) < man.k:
            raise RepairError(f"deal {deal_id}: only {len(healthy)} healthy shares, {man.k} needed: data lost")
        movable = []
        shares = await self.chain.get_shares(deal_id)
        for i in sorted(bad):
            share = shares[i]
            if share.faulty or not share.accepted:
                movable.append(i)
            else:
                report.failed[i] = "unhealthy but not yet faulty on-chain: it can be moved after its missed proof"
        if not movable:
            return report
        providers = {share.provider.lower() for share in shares}
        networks = {network_of(url) for url in healthy.values()}  # the new nodes go to other networks
        _, spares = await choose_nodes(  # n = 0: never raises; the spares it finds, in draw order
            self.directory,
            self.client,
            self.chain,
            0,
            need_free=man.share_size,
            policy=self.placement,
            spares=len(movable) + 2,
            exclude=providers,
            taken_networks=networks,
        )
        work = self.workdir / f"repair-{deal_id}-{int(time.time() * 1000)}"
        work.mkdir(parents=True)
        try:
            await self._rebuild(man, healthy, movable, work, report)
            for i in movable:
                if i in report.failed:
                    continue
                await self._place(deal_id, man, i, spares, work, report)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        report.seconds = time.perf_counter() - start
        self.reports.append(report)
        return report

    async def _rebuild(
        self, man: Manifest, healthy: dict[int, str], wanted: list[int], work: Path, report: RepairReport
    ) -> None:
        loop = asyncio.get_running_loop()
        sources = {i: RemoteShareSource.for_manifest(self.client, url, man, i, loop) for i, url in healthy.items()}

        def run() -> None:
            with localfs.share_writers(work, man.n) as writers:
                decoded = rebuild(man, sources, {i: writers[i] for i in wanted})
            report.bytes_fetched = sum(decoded.blocks_used.values()) * man.block_size
            report.bytes_rebuilt = len(wanted) * man.share_size

        try:
            await asyncio.to_thread(run)
        except ErasureError as err:
            raise RepairError(f"could not rebuild shares {wanted}: {err}") from err

    async def _place(
        self, deal_id: int, man: Manifest, index: int, spares: list[NodeInfo], work: Path, report: RepairReport
    ) -> None:
        raw = man.canonical_bytes()
        while spares:
            node = spares.pop(0)
            try:
                await self.chain.replace_provider(self.owner, deal_id, index, node.address)
            except chain_errors.ChainError as err:
                report.failed[index] = f"replaceProvider refused: {err}"
                return
            try:
                await upload_share(self.client, self.owner, node, man, deal_id, index, work, _quiet, man.share_size)
                await self.client.put_manifest(node.url, man.hash().hex(), raw)
            except NodeError as err:
                log.warning("repair of share %d on %s failed: %s; trying another node", index, node.url, err)
                continue  # the share is still unaccepted on-chain: the next spare may take it
            report.repaired[index] = node.url
            log.info("deal %d share %d rebuilt onto %s", deal_id, index, node.url)
            return
        report.failed[index] = "no spare node left"

    async def watched_deals(self) -> list[int]:
        return await self.chain.deals_of(owner=self.owner.address)

    async def tick(self) -> list[RepairReport]:
        done = []
        epoch = await self.chain.current_epoch()
        for deal_id in await self.watched_deals():
            deal = await self.chain.get_deal(deal_id)
            if deal.settled or epoch + 1 >= deal.end_epoch:
                continue
            try:
                done.append(await self.repair(deal_id))
            except (RepairError, MarketError, chain_errors.ContractsError) as err:
                log.error("deal %d: %s", deal_id, err)
        return done


def _quiet(_stage: str, _n: int, _total: int) -> None:
    return None
