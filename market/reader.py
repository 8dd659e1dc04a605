"""Read a licensed dataset straight from the network: files, byte ranges, seekable file objects.

    open:  the license checked on-chain (delivered, not expired, consent not ended for revocable
           terms; each failure its own error) -> the delivered key checked against the on-chain
           key commitment -> the manifest from any holder, checked against the on-chain hash
           -> holders ranked by a health probe -> a folder's encrypted file index read and parsed
    read:  a byte range -> only the segments covering it, from any k holders, every block checked
           against its Merkle root (:class:`erasure.ranges.RangeReader`) -> those messages decrypted

:class:`DatasetReader` is async; :class:`market.reader_sync.SyncDatasetReader` is its synchronous
face for data tools. The license checks and their errors are :func:`market.buyer.check_license`'s
(re-exported here: ``LicenseRefunded``, ``LicenseExpired``, ``ConsentEnded``, ``check_license``).
Paths are "/"-separated and relative to the dataset's top; a single file dataset holds one file,
named as in its manifest.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TypeVar

from contracts.chain import Chain
from contracts.models import License
from erasure import folderpack
from erasure.errors import ErasureError, FileIndexError
from erasure.folderpack import Entry, FileIndex
from erasure.manifest import Manifest
from erasure.ranges import RangeReader
from storage_node.client import NodeClient

from . import buyer, holders
from .buy_errors import ConsentEnded as ConsentEnded
from .buy_errors import LicenseExpired as LicenseExpired
from .buy_errors import LicenseRefunded as LicenseRefunded
from .buyer import check_license as check_license
from .directory import Directory
from .keystore import Keystore
from .remote_source import RemoteShareSource

T = TypeVar("T")
CHUNK = 1 << 20


class ReaderError(buyer.BuyError):
    """A read could not be served: no such file, a folder read as a file, or the dataset's bytes
    could not be rebuilt from the holders (the cause is chained)."""


@dataclass(frozen=True)
class Opened:
    """What opening found: the license (None when the caller checked it), the manifest, holders by
    share index, their ranking."""

    license: License | None
    dataset_id: int
    manifest: Manifest
    urls: dict[int, str]
    order: list[int]
    unreachable: dict[int, str]
    faulty: list[int]
    unlisted: dict[int, str]


class DatasetReader:
    """Random access to one licensed dataset (async). Use :meth:`open`; ``aclose()`` when done."""

    def __init__(self, opened: Opened, ranges: RangeReader, index: FileIndex, sources: list[RemoteShareSource]):
        self.opened = opened
        self.manifest = opened.manifest
        self.ranges = ranges
        self.index = index
        self._sources = sources

    @classmethod
    async def open(
        cls,
        chain: Chain,
        keystore: Keystore,
        directory: Directory,
        client: NodeClient,
        license_id: int,
        *,
        cache_segments: int = 16,
        prefetch: int = 4,
        readahead: int = 1,
        threads: int | None = None,
        first_wait: float = buyer.FIRST_WAIT,
        deadline: float = buyer.DEADLINE,
    ) -> DatasetReader:
        """Check the license, its key and the manifest, then read a folder's file index.

        ``readahead``: blocks per range request to each holder (1 for random reads; a whole-file
        reader such as ``fetch`` asks for more). ``deadline``: seconds any one read may wait for
        slow holders. Raises the errors of :func:`market.buyer.check_license`, :class:`~market.buyer.KeyMismatch`,
        :class:`~market.buyer.ManifestUnavailable`, :class:`ReaderError`."""
        lic, data_key = await buyer.licensed_key(chain, keystore, license_id)
        found, man = await holders.located(chain, directory, client, lic.dataset_id)
        return await cls.from_checked(
            client,
            found,
            man,
            data_key,
            dataset_id=lic.dataset_id,
            license=lic,
            cache_segments=cache_segments,
            prefetch=prefetch,
            readahead=readahead,
            threads=threads,
            first_wait=first_wait,
            deadline=deadline,
            directory=directory,
        )

    @classmethod
    async def from_checked(
        cls,
        client: NodeClient,
        found: holders.Holders,
        man: Manifest,
        data_key: bytes,
        *,
        dataset_id: int,
        license: License | None = None,
        cache_segments: int = 16,
        prefetch: int = 4,
        readahead: int = 1,
        threads: int | None = None,
        first_wait: float = buyer.FIRST_WAIT,
        deadline: float = buyer.DEADLINE,
        partial_reads: bool = True,
        directory: Directory | None = None,
    ) -> DatasetReader:
        """:meth:`open` once the license, the key (``data_key``, checked against the manifest's
        commitment again by the decoder) and the manifest (``man``, checked against the chain:
        :func:`market.holders.checked_manifest`) are: ranks the holders (a holder that does not
        answer is looked up again in ``directory``), reads a folder's index."""
        order, unreachable = await holders.rank_holders(client, found, directory)
        opened = Opened(
            license, dataset_id, man, found.urls, order, unreachable, sorted(found.faulty), dict(found.unlisted)
        )
        sources = list(
            RemoteShareSource.started(
                client,
                found.urls,
                man,
                order,
                readahead=readahead,
                first_wait=first_wait,
                deadline=time.monotonic() + deadline,
            ).values()
        )

        def make() -> RangeReader:
            return RangeReader(
                man,
                data_key,
                {s.index: s for s in sources},
                cache_segments=cache_segments,
                prefetch=prefetch,
                threads=threads,
                partial_reads=partial_reads,
            )

        try:
            ranges = await asyncio.to_thread(make)  # admitting the shares waits on the loop: not on it
            if man.content == "folder":
                assert man.index is not None
                raw = await asyncio.to_thread(ranges.read, man.index.offset, man.index.size)
                index = folderpack.parse_index(raw, man.index)
            else:
                name = man.name or "data"
                index = FileIndex({name: Entry(name, "file", 0, man.plaintext_size, b"")})
        except ErasureError as err:
            for source in sources:
                source.close()
            raise ReaderError(f"could not rebuild dataset {dataset_id}'s file index: {err}") from err
        return cls(opened, ranges, index, sources)

    async def aclose(self) -> None:
        for source in self._sources:
            source.close()
        await asyncio.to_thread(self.ranges.close)

    async def __aenter__(self) -> DatasetReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def files(self) -> list[Entry]:
        """Every regular file, in the dataset's order (sorted paths)."""
        return self.index.files()

    def stat(self, path: str) -> Entry:
        """The entry at ``path`` (links followed, once); :class:`ReaderError` if there is none."""
        try:
            entry = self.index.get(path)
            if entry.type == "link":
                parent = entry.path.rpartition("/")[0]
                entry = self.index.get(f"{parent}/{entry.target}" if parent else entry.target)
        except FileIndexError as err:
            raise ReaderError(str(err)) from err
        return entry

    def listdir(self, path: str = "") -> list[Entry]:
        try:
            return self.index.children(path)
        except FileIndexError as err:
            raise ReaderError(str(err)) from err

    def file_entry(self, path: str) -> Entry:
        entry = self.stat(path)
        if entry.type != "file":
            raise ReaderError(f"{path!r} is a {entry.type}, not a file")
        return entry

    async def read_range(self, offset: int, size: int) -> bytes:
        """Plaintext bytes ``[offset, offset + size)`` of the whole dataset (clipped at its end)."""
        try:
            return await asyncio.to_thread(self.ranges.read, offset, size)
        except ErasureError as err:
            raise ReaderError(f"bytes {offset}+{size} could not be read: {err}") from err

    async def read_file(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        """Bytes of file ``path`` from ``offset`` (``size`` of them, or to its end)."""
        entry = self.file_entry(path)
        offset = max(0, min(offset, entry.size))
        size = entry.size - offset if size is None else max(0, min(size, entry.size - offset))
        return await self.read_range(entry.offset + offset, size)

    def sync_read(self, offset: int, size: int) -> bytes:
        """:meth:`read_range` for a thread that is not the event loop's (the decoder blocks)."""
        try:
            return self.ranges.read(offset, size)
        except ErasureError as err:
            raise ReaderError(f"bytes {offset}+{size} could not be read: {err}") from err
