"""A whole fetch of a format-v2 folder through the streamed path (:mod:`market.stream_fetch`).

A folder's plaintext is its files packed one after another with the file index
(:mod:`erasure.folderpack`), so it streams like a single file: the k systematic shares, every
block verified, written in place into ``OUT.packed``. Then the index is read from that file
(:func:`erasure.folderpack.parse_index`) and the tree rebuilt file by file under ``OUT.part``,
each file checked against its SHA-256 in the index, and moved into place whole; the packed copy
is removed. The cost against the reader's path: the dataset on disk twice until it is unpacked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Iterator

from erasure import folderpack
from erasure.errors import FileIndexError
from erasure.folderpack import Entry

from .dataset_fetch import FetchReport, WholeFetch
from .fetch_phases import mark
from .stream_fetch import fetch_file

CHUNK = 4 << 20
"""Bytes copied from the packed file per read while unpacking."""


async def fetch_folder(job: WholeFetch) -> FetchReport:
    """Write the folder ``job.man`` describes to the directory ``job.out`` (see the module)."""
    span = job.man.index
    if job.man.content != "folder" or span is None:
        raise ValueError("fetch_folder takes a folder's manifest (with its file index)")
    start = time.perf_counter()
    packed = job.out.with_name(job.out.name + ".packed")
    tmp = job.out.with_name(job.out.name + ".part")
    try:
        report = await fetch_file(dataclasses.replace(job, out=packed, sync=False))  # a temporary: not synced

        def unpack() -> None:
            fd = os.open(packed, os.O_RDONLY)
            try:
                index = folderpack.parse_index(os.pread(fd, span.size, span.offset), span)

                def read(entry: Entry) -> Iterator[bytes]:
                    at, end = entry.offset, entry.offset + entry.size
                    while at < end:
                        chunk = os.pread(fd, min(CHUNK, end - at), at)
                        if not chunk:
                            raise FileIndexError(f"{entry.path!r} lies past the end of the dataset")
                        at += len(chunk)
                        yield chunk

                shutil.rmtree(tmp, ignore_errors=True)
                folderpack.unpack_entries(index, read, tmp)
            finally:
                os.close(fd)
            os.replace(tmp, job.out)
            folderpack.sync_dir(job.out.parent)

        await asyncio.to_thread(unpack)
        mark("unpacked")
        report.seconds = time.perf_counter() - start
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            packed.unlink()
    return report
