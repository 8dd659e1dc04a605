"""``datasov fetch`` of a format-v2 dataset as a reader client (:mod:`market.reader`), given what
:func:`market.dataset_fetch.fetch_dataset` checked: files streamed in order with segments
prefetched ahead."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator

from erasure import folderpack, localfs
from erasure.errors import ErasureError

from .dataset_fetch import FetchReport, WholeFetch
from .fetch_phases import mark
from .reader import CHUNK, DatasetReader, ReaderError


async def fetch_to(job: WholeFetch) -> FetchReport:
    """``datasov fetch`` of a format-v2 dataset through a reader, given what the fetch checked: each
    file streamed in order with segments prefetched ahead; a folder is rebuilt file by file (each
    checked against its SHA-256 in the file index) aside and moved into place whole."""
    threads, progress, out, dataset_id = job.threads, job.progress, job.out, job.dataset_id
    start = time.perf_counter()
    r = await DatasetReader.from_checked(
        job.client,
        job.found,
        job.man,
        job.data_key,
        dataset_id=dataset_id,
        prefetch=threads,
        cache_segments=2 * threads + 2,
        readahead=8,
        threads=threads,
        first_wait=job.first_wait,
        deadline=job.deadline,
        partial_reads=False,
        directory=job.directory,  # every segment is decoded whole anyway: from the same k holders
    )
    mark("holders ranked, block roots, reader")
    report = FetchReport.begin(job.license_id, dataset_id, r.manifest, job.found, dict(r.opened.unreachable))

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
            folderpack.sync_dir(out.parent)
        else:
            localfs.write_dataset("file", chunks(0, r.manifest.plaintext_size), out)

    try:
        await asyncio.to_thread(run)
        mark("transfer, verify, decode, decrypt, write")
    except ErasureError as err:
        raise ReaderError(f"could not rebuild dataset {dataset_id}: {err}") from err
    finally:
        report.took(r.ranges.report)
        await r.aclose()
    report.seconds = time.perf_counter() - start
    return report
