"""Fetch a whole dataset once its license is checked and its data key received: verify, decode,
decrypt, write.

    holders (latest deal on-chain) -> manifest from any holder, checked against the on-chain hash
    and key commitment -> format v2: the k systematic shares streamed (:mod:`market.stream_fetch`,
    a folder unpacked after: :mod:`market.stream_folder`; a layout that does not fit: a reader
    client, :mod:`market.reader_fetch`), given what was checked here (nothing is checked twice);
    format v1: block roots of each share checked against the committed share roots -> any k
    verified blocks per segment, fastest holders first, k at once and hedged
    (:mod:`market.remote_source`) -> decode -> decrypt -> write

Nothing unverified reaches the output: a node serving wrong bytes only costs a retry elsewhere.
A slow holder is not a missing one: a read that has not answered within its wait (``first_wait``
seconds, doubled after each timeout) is left running while the other holders are asked, and waited
for again later, until the fetch's ``deadline``; a read behind its holders' p95 latency is hedged by
a spare holder at once. Holders whose share is marked faulty on-chain are asked last rather than
never (their blocks are verified like any other). When the fetch fails, its error says which shares
timed out, which holders refused, which were unreachable and which served bytes that failed
verification.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.chain import Chain
from erasure import localfs, systematic
from erasure.decoding import Decoder, DecodeReport
from erasure.errors import ErasureError
from erasure.manifest import Manifest
from storage_node.client import NodeClient

from . import holders
from .buy_errors import BuyError
from .directory import Directory
from .fetch_phases import mark
from .holders import Holders, rank_holders
from .remote_source import RemoteShareSource

FIRST_WAIT = 2.0
"""Seconds a block read may take before the decoder also asks other holders (doubles per timeout)."""
DEADLINE = 600.0
"""Seconds a fetch keeps asking slow holders before it gives up."""


@dataclass
class FetchReport:
    license_id: int
    dataset_id: int
    manifest_hash: str
    bytes_written: int
    seconds: float
    holders: dict[int, str]
    unreachable: dict[int, str] = field(default_factory=dict)
    excluded: dict[int, str] = field(default_factory=dict)
    shares_used: list[int] = field(default_factory=list)
    faulty: list[int] = field(default_factory=list)  # marked faulty on-chain: asked last
    unlisted: dict[int, str] = field(default_factory=dict)  # no URL known for the holder
    timeouts: dict[int, int] = field(default_factory=dict)  # reads that did not answer in time
    hedged: dict[int, int] = field(default_factory=dict)  # reads behind their p95: a spare was asked

    @classmethod
    def begin(
        cls, license_id: int, dataset_id: int, man: Manifest, found: Holders, unreachable: dict[int, str]
    ) -> FetchReport:
        """The report of a fetch about to start: who holds what, who is faulty, unlisted, unreachable."""
        report = cls(license_id, dataset_id, man.hash().hex(), 0, 0.0, holders=dict(found.urls))
        report.faulty, report.unlisted, report.unreachable = sorted(found.faulty), dict(found.unlisted), unreachable
        return report

    def took(self, decoded: DecodeReport) -> None:
        """What the decoder found: shares excluded, blocks used, slow and hedged reads."""
        self.excluded.update(decoded.excluded)
        self.shares_used = sorted(set(self.shares_used) | set(decoded.blocks_used))
        self.timeouts = dict(decoded.timeouts)
        self.hedged = dict(decoded.hedged)

    def to_json(self) -> dict[str, Any]:
        return {
            "license_id": self.license_id,
            "dataset_id": self.dataset_id,
            "manifest_hash": self.manifest_hash,
            "bytes": self.bytes_written,
            "seconds": round(self.seconds, 3),
            "holders": self.holders,
            "unreachable": self.unreachable,
            "excluded": self.excluded,
            "shares_used": self.shares_used,
            "faulty": self.faulty,
            "unlisted": self.unlisted,
            "timeouts": self.timeouts,
            "hedged": self.hedged,
        }


@dataclass(frozen=True)
class WholeFetch:
    """A whole format-v2 fetch given what :func:`fetch_dataset` checked (the license, ``data_key``
    against the chain's commitment, ``man`` against the chain's hash): the one signature of both
    paths (:func:`market.stream_fetch.fetch_file`, :func:`market.stream_folder.fetch_folder`,
    :func:`market.reader_fetch.fetch_to`)."""

    client: NodeClient
    found: Holders
    man: Manifest
    data_key: bytes
    out: Path
    dataset_id: int
    license_id: int = 0
    threads: int = 8
    progress: Callable[[int], None] | None = None
    first_wait: float = FIRST_WAIT
    deadline: float = DEADLINE
    directory: Directory | None = None  # where a holder that does not answer is looked up again
    sync: bool = True  # fsync the output before it is moved into place (not a temporary that is unpacked)


async def fetch_dataset(
    chain: Chain,
    directory: Directory,
    client: NodeClient,
    dataset_id: int,
    data_key: bytes,
    out: Path,
    *,
    license_id: int = 0,
    threads: int = 8,
    progress: Callable[[int], None] | None = None,
    first_wait: float = FIRST_WAIT,
    deadline: float = DEADLINE,
    located: tuple[Holders, Manifest] | None = None,
) -> FetchReport:
    """:func:`market.buyer.fetch` once the license is checked and its data key received (checked
    against the commitment): also what a pool license fetches, one contribution at a time
    (:mod:`market.pools`). A v2 dataset streams its k systematic shares (:mod:`market.stream_fetch`;
    a folder is unpacked after, :mod:`market.stream_folder`); a layout whose segments do not hold
    whole messages is fetched through a reader. ``located``: the holders
    and the checked manifest (:func:`market.holders.located`) if the caller already has them."""
    start = time.perf_counter()
    found, man = located if located is not None else await holders.located(chain, directory, client, dataset_id)
    mark("holders from chain, manifest")
    if man.seekable:  # v2: the k systematic shares streamed where the layout fits; else through a reader
        if man.content == "file" and systematic.fits(man):
            from .stream_fetch import fetch_file as whole
        elif man.content == "folder" and man.index is not None and systematic.fits(man):
            from .stream_folder import fetch_folder as whole
        else:
            from .reader_fetch import fetch_to as whole
        checked = (client, found, man, data_key, out, dataset_id)
        return await whole(WholeFetch(*checked, license_id, threads, progress, first_wait, deadline, directory))

    give_up = time.monotonic() + deadline
    order, unreachable = await rank_holders(client, found, directory)
    report = FetchReport.begin(license_id, dataset_id, man, found, unreachable)
    sources = RemoteShareSource.started(client, found.urls, man, order, first_wait=first_wait, deadline=give_up)

    def run() -> int:
        decoder = Decoder(man, data_key, sources, threads=threads, progress=progress)
        written = 0

        def counted() -> Iterator[bytes]:
            nonlocal written
            for chunk in decoder:
                written += len(chunk)
                yield chunk

        try:
            localfs.write_dataset(man.content, counted(), out, index=man.index)
        except ErasureError as err:
            raise BuyError(
                f"could not rebuild dataset {dataset_id}: {err}; {problems(report, sources, decoder)}"
            ) from err
        finally:
            report.took(decoder.report)
        return written

    try:
        report.bytes_written = await asyncio.to_thread(run)
    except ErasureError as err:  # the manifest does not fit the decoder (rebuild errors are BuyErrors)
        raise BuyError(f"could not rebuild dataset {dataset_id}: {err}") from err
    finally:
        for source in sources.values():
            source.close()
    report.seconds = time.perf_counter() - start
    return report


def problems(report: FetchReport, sources: dict[int, RemoteShareSource], decoder: Decoder) -> str:
    """Which shares could not help, by cause: the part of a failed fetch's error a user acts on."""
    causes: dict[str, list[int]] = {"timed out": [], "refused": [], "unreachable": []}
    for i, source in sources.items():
        if source.failure is not None:
            causes[source.failure[0]].append(i)
    failed = set(decoder.report.bad_blocks) | {
        i for i, why in decoder.report.excluded.items() if why.startswith("block roots rejected") and i in sources
    }
    causes["failed verification"] = sorted(failed - {i for ids in causes.values() for i in ids})
    slow = sorted(set(decoder.report.timeouts) - {i for ids in causes.values() for i in ids})
    if slow:
        causes["slow (answered late or not at all)"] = slow
    causes["no holder known"] = sorted(report.unlisted)
    causes["marked faulty on-chain"] = report.faulty
    return "; ".join(f"{name}: {ids}" for name, ids in causes.items() if ids) or "no share failed"
