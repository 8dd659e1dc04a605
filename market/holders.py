"""Where a dataset's shares are and whom to ask first: holders from the latest deal on-chain, the
manifest from any of them (checked against the on-chain hash), holders ranked by a health probe.

Used by every read of a dataset: :mod:`market.dataset_fetch` (whole fetches), :mod:`market.reader`
(random access) and :mod:`market.repair`; :mod:`market.buyer` re-exports the names it always had.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from contracts.chain import Chain
from contracts.models import Dataset
from erasure import manifest
from erasure.errors import ErasureError
from erasure.manifest import Manifest
from storage_node.client import NodeClient
from storage_node.errors import NodeError

from .buy_errors import BuyError, ManifestUnavailable
from .directory import Directory, DirectoryError, moved

PROBE_WAIT = 5.0
"""Seconds a holder may take to answer the health probe before it is ranked after those that did."""


@dataclass(frozen=True)
class Holders:
    """Where a dataset's shares are, from its latest deal on-chain."""

    urls: dict[int, str]  # share index -> node URL (faulty ones included); a moved node's is replaced
    faulty: frozenset[int]  # shares marked faulty on-chain (a missed proof): asked last
    unlisted: dict[int, str]  # shares whose provider the directory does not know -> why
    providers: dict[int, str] = field(default_factory=dict)  # share index -> its operator's address

    def healthy_first(self) -> dict[int, str]:
        """The URLs, shares marked faulty on-chain last (the order the manifest is asked in)."""
        return {i: self.urls[i] for i in sorted(self.urls, key=lambda i: (i in self.faulty, i))}


async def holders(chain: Chain, directory: Directory, dataset_id: int) -> Holders:
    """Every share's holder from the dataset's latest deal on-chain, faulty ones marked. The n
    share reads are sent at once; so are the URL look-ups after the first (which fills the
    directory's view: n look-ups at once would each read the whole chain view)."""
    deals = await chain.deals_of(dataset_id=dataset_id)
    if not deals:
        raise BuyError(f"dataset {dataset_id} has no storage deal")
    deal = await chain.get_deal(deals[-1])
    shares = await chain.get_shares(deal.deal_id)

    async def url(address: str) -> str | DirectoryError:
        try:
            return await directory.url_of(address)
        except DirectoryError as err:
            return err

    providers = sorted({s.provider for s in shares})
    first = [await url(providers[0])] if providers else []  # the directory reads the chain once, then answers
    found = dict(zip(providers, first + list(await asyncio.gather(*(url(p) for p in providers[1:]))), strict=True))
    urls: dict[int, str] = {}
    unlisted: dict[int, str] = {}
    for i, share in enumerate(shares):
        where = found[share.provider]
        if isinstance(where, DirectoryError):
            unlisted[i] = str(where)
        else:
            urls[i] = where
    faulty = frozenset(i for i, s in enumerate(shares) if s.faulty)
    return Holders(urls, faulty, unlisted, {i: s.provider for i, s in enumerate(shares)})


async def fetch_manifest(client: NodeClient, urls: dict[int, str], dataset_hash: bytes) -> Manifest:
    """The manifest from the first holder (in ``urls`` order) that serves one with this hash;
    :class:`~market.buyer.ManifestUnavailable` naming the first few failures if none does."""
    problems: list[str] = []
    for url in urls.values():
        try:
            raw = await client.get_manifest(url, dataset_hash.hex())
            man = manifest.parse(raw)
        except (NodeError, ErasureError) as err:
            problems.append(f"{url}: {err}")
            continue
        if man.hash() == dataset_hash:
            return man
        problems.append(f"{url}: served a manifest with another hash")
    shown = "; ".join(problems[:3]) or "no holders known"
    raise ManifestUnavailable(f"no holder served the manifest {dataset_hash.hex()} ({shown})")


async def checked_manifest(
    chain: Chain, client: NodeClient, dataset_id: int, found: Holders, dataset: Dataset | None = None
) -> Manifest:
    """The dataset's manifest, checked against its on-chain hash, key commitment and salt
    (``dataset``: its on-chain record, if the caller read it already)."""
    if dataset is None:
        dataset = await chain.get_dataset(dataset_id)
    man = await fetch_manifest(client, found.healthy_first(), dataset.manifest_hash)
    if (man.key_commitment, man.salt) != (dataset.key_commitment, dataset.key_salt):
        raise BuyError(f"dataset {dataset_id}: its manifest and its registration commit to different keys")
    return man


async def located(
    chain: Chain, directory: Directory, client: NodeClient, dataset_id: int, dataset: Dataset | None = None
) -> tuple[Holders, Manifest]:
    """The dataset's holders and its manifest, checked (:func:`holders`, :func:`checked_manifest`):
    what a fetch and a reader both start from, once the license and key are. The dataset's record
    (``dataset``, if the caller has it) is read while the holders are."""
    if dataset is not None:
        found = await holders(chain, directory, dataset_id)
    else:
        found, dataset = await asyncio.gather(holders(chain, directory, dataset_id), chain.get_dataset(dataset_id))
    return found, await checked_manifest(chain, client, dataset_id, found, dataset)


async def rank_holders(
    client: NodeClient, found: Holders, directory: Directory | None = None
) -> tuple[list[int], dict[int, str]]:
    """Share indexes fastest holder first (by a health probe), then those that did not answer,
    then those marked faulty on-chain; and why each that did not answer did not. With a
    ``directory``, a holder that does not answer at its URL is looked up again
    (:func:`market.directory.moved`, as placement and repair do): if it answers at a new one,
    that replaces its URL in ``found.urls``."""

    async def rtt(url: str) -> float | str:
        t = time.perf_counter()
        try:
            await asyncio.wait_for(client.health(url), PROBE_WAIT)
        except (NodeError, TimeoutError) as err:
            return str(err) or f"no answer to the health probe in {PROBE_WAIT:g} s"
        return time.perf_counter() - t

    async def probe(index: int, url: str) -> tuple[float | None, int, str]:
        got = await rtt(url)
        if isinstance(got, str) and directory is not None and index in found.providers:
            new = await moved(directory, found.providers[index], url)
            if new is not None and not isinstance(again := await rtt(new), str):
                found.urls[index] = new
                return again, index, new
        return (None, index, got) if isinstance(got, str) else (got, index, url)

    probes = await asyncio.gather(*(probe(i, u) for i, u in found.urls.items()))
    live = sorted((p for p in probes if p[0] is not None), key=lambda p: p[0] or 0.0)
    unreachable = {i: msg for t, i, msg in probes if t is None}
    order = [i for _, i, _ in live] + sorted(unreachable)
    return sorted(order, key=lambda i: i in found.faulty), unreachable  # stable: keeps the speed order
