"""``datasov fetch`` of a format-v2 dataset as a reader client (:mod:`market.reader`): the same
checks as every read, files streamed in order with segments prefetched ahead."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from contracts.chain import Chain
from erasure import folderpack, localfs
from erasure.errors import ErasureError
from storage_node.client import NodeClient

from . import buyer
from .directory import Directory
from .keystore import Keystore
from .reader import CHUNK, DatasetReader, ReaderError


async def fetch_to(
    chain: Chain,
    keystore: Keystore,
    directory: Directory,
    client: NodeClient,
    license_id: int,
    out: Path,
    *,
    threads: int = 8,
    progress: Callable[[int], None] | None = None,
    first_wait: float = buyer.FIRST_WAIT,
    deadline: float = buyer.DEADLINE,
) -> buyer.FetchReport:
    """``datasov fetch`` of a format-v2 dataset through a reader: the same checks as every read, each
    file streamed in order with segments prefetched ahead; a folder is rebuilt file by file (each
    checked against its SHA-256 in the file index) aside and moved into place whole."""
    start = time.perf_counter()
    r = await DatasetReader.open(
        chain,
        keystore,
        directory,
        client,
        license_id,
        prefetch=threads,
        cache_segments=2 * threads + 2,
        readahead=8,
        threads=threads,
        first_wait=first_wait,
        deadline=deadline,
    )
    o = r.opened
    report = buyer.FetchReport(license_id, o.license.dataset_id, r.manifest.hash().hex(), 0, 0.0, holders=o.urls)
    report.faulty, report.unlisted, report.unreachable = o.faulty, dict(o.unlisted), dict(o.unreachable)

    def chunks(offset: int, size: int) -> Iterator[bytes]:
        end = offset + size
        while offset < end:
            chunk = r.sync_read(offset, min(CHUNK, end - offset))
            offset += len(chunk)
            report.bytes_written += len(chunk)
            if progress is not None:
                progress(len(chunk))
            yield chunk

    def run() -> None:
        if r.manifest.content == "folder":
            assert r.manifest.index is not None
            report.bytes_written += r.manifest.index.size  # read at open: counted as plaintext fetched
            if progress is not None:
                progress(r.manifest.index.size)
            tmp = out.with_name(out.name + ".part")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                folderpack.unpack_entries(r.index, lambda e: chunks(e.offset, e.size), tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            os.replace(tmp, out)
        else:
            localfs.write_dataset("file", chunks(0, r.manifest.plaintext_size), out)

    try:
        await asyncio.to_thread(run)
    except ErasureError as err:
        raise ReaderError(f"could not rebuild dataset {o.license.dataset_id}: {err}") from err
    finally:
        decoded = r.ranges.report
        report.excluded = dict(decoded.excluded)
        report.shares_used = sorted(decoded.blocks_used)
        report.timeouts = dict(decoded.timeouts)
        await r.aclose()
    report.seconds = time.perf_counter() - start
    return report
