"""Read a licensed dataset straight from the network: files, byte ranges, seekable file objects.

    open:  the license checked on-chain (delivered, not expired, consent not ended for revocable
           terms; each failure its own error) -> the delivered key checked against the on-chain
           key commitment -> the manifest from any holder, checked against the on-chain hash
           -> holders ranked by a health probe -> a folder's encrypted file index read and parsed
    read:  a byte range -> only the segments covering it, from any k holders, every block checked
           against its Merkle root (:class:`erasure.ranges.RangeReader`) -> those messages decrypted

:class:`DatasetReader` is async; :class:`SyncDatasetReader` is its synchronous face for data tools
(pandas, pyarrow, Hugging Face ``datasets``, data loaders): it runs the async reader on an event
loop of its own in a daemon thread, and :meth:`SyncDatasetReader.open` returns a seekable,
read-only binary file object. Paths are "/"-separated and relative to the dataset's top; a single
file dataset holds one file, named as in its manifest.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from contracts.chain import Chain
from contracts.models import License, LicenseStatus
from erasure import folderpack
from erasure.errors import ErasureError, FileIndexError
from erasure.folderpack import Entry, FileIndex
from erasure.manifest import Manifest
from erasure.ranges import RangeReader
from storage_node.client import NodeClient

from . import buyer, holders
from .directory import Directory
from .keystore import Keystore
from .remote_source import Latencies, RemoteShareSource

T = TypeVar("T")
CHUNK = 1 << 20


class LicenseRefunded(buyer.LicenseNotUsable):
    """The license was refunded (no key in time, consent revoked before delivery, or a disputed key)."""


class LicenseExpired(buyer.LicenseNotUsable):
    """The license's term is over (``expires_at``, chain time)."""


class ConsentEnded(buyer.LicenseNotUsable):
    """The owner revoked consent and the license's terms are revocable."""


class ReaderError(buyer.BuyError):
    """A read could not be served: no such file, a folder read as a file, or the dataset's bytes
    could not be rebuilt from the holders (the cause is chained)."""


async def check_license(chain: Chain, license_id: int) -> License:
    """The license if it may be used now; else exactly why not.

    Raises :class:`~market.buyer.KeyNotDelivered` (pending), :class:`LicenseRefunded`,
    :class:`LicenseExpired`, :class:`ConsentEnded`, or :class:`~market.buyer.LicenseNotUsable`
    if the contract says no for a reason this code does not know."""
    lic = await chain.get_license(license_id)
    now = await chain.timestamp()
    if lic.status == LicenseStatus.PENDING:
        raise buyer.KeyNotDelivered(
            f"the key for license {license_id} has not been delivered yet", refundable=now > lic.delivery_deadline
        )
    if lic.status in (LicenseStatus.REFUNDED, LicenseStatus.REJECTED):
        why = "after a disputed (wrong) key delivery" if lic.status == LicenseStatus.REJECTED else ""
        raise LicenseRefunded(f"license {license_id} was refunded {why}".strip())
    if lic.expires_at and now >= lic.expires_at:
        raise LicenseExpired(f"license {license_id} expired at chain time {lic.expires_at} (now {now})")
    if lic.revocable and (revoked := await chain.consent_revoked_at(lic.dataset_id)):
        raise ConsentEnded(
            f"license {license_id}: the owner revoked consent for dataset {lic.dataset_id} at chain time "
            f"{revoked}, and the license's terms are revocable"
        )
    if not await chain.is_license_valid(license_id):
        raise buyer.LicenseNotUsable(f"license {license_id} is not valid on-chain")
    return lic


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
        slow holders. Raises the errors of :func:`check_license`, :class:`~market.buyer.KeyMismatch`,
        :class:`~market.buyer.ManifestUnavailable`, :class:`ReaderError`."""
        lic = await check_license(chain, license_id)
        data_key = await buyer.receive_key(chain, keystore, lic)
        found = await holders.holders(chain, directory, lic.dataset_id)
        man = await holders.checked_manifest(chain, client, lic.dataset_id, found)
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
    ) -> DatasetReader:
        """:meth:`open` once the license, the key (``data_key``, checked against the manifest's
        commitment again by the decoder) and the manifest (``man``, checked against the chain:
        :func:`market.holders.checked_manifest`) are: ranks the holders, reads a folder's index."""
        order, unreachable = await holders.rank_holders(client, found)
        opened = Opened(
            license, dataset_id, man, found.urls, order, unreachable, sorted(found.faulty), dict(found.unlisted)
        )
        loop = asyncio.get_running_loop()
        give_up = time.monotonic() + deadline
        latencies = Latencies()  # the holders of this dataset: one class for hedging
        sources = [
            RemoteShareSource.for_manifest(
                client,
                found.urls[i],
                man,
                i,
                loop,
                readahead=readahead,
                first_wait=first_wait,
                deadline=give_up,
                latencies=latencies,
            )
            for i in order
        ]
        for source in sources:
            source.start()  # every holder's block roots asked for at once

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


class RangeFile(io.RawIOBase):
    """One file of a dataset as a seekable, read-only raw file (wrap it in ``io.BufferedReader``)."""

    def __init__(self, read: Callable[[int, int], bytes], entry: Entry) -> None:
        super().__init__()
        self._read = read
        self.entry = entry
        self.name = entry.path
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.entry.size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        want = min(len(view), self.entry.size - self._pos)
        if want <= 0:
            return 0
        data = self._read(self.entry.offset + self._pos, want)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def write(self, b: Any) -> int:
        raise io.UnsupportedOperation("datasets are read-only")


class SyncDatasetReader:
    """A :class:`DatasetReader` for synchronous code: its own event loop, in a daemon thread.

    ``opener`` is a coroutine function run on that loop; it returns the reader and a cleanup
    coroutine function (closing the chain connection and node client it made). Reads block the
    calling thread only; the loop keeps serving the holders' connections meanwhile."""

    def __init__(
        self, opener: Callable[[], Awaitable[tuple[DatasetReader, Callable[[], Awaitable[None]]]]], *, timeout: float
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="datasov-reader", daemon=True)
        self._thread.start()
        self._timeout = timeout
        try:
            self.reader, self._cleanup = self._call(opener())
        except BaseException:
            self._stop()
            raise

    def _call(self, coro: Awaitable[T]) -> T:
        async def wrap() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrap(), self._loop).result(self._timeout)

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self._timeout)
        if not self._thread.is_alive():
            self._loop.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self.reader.aclose())
            self._call(self._cleanup())
        finally:
            self._stop()

    def __enter__(self) -> SyncDatasetReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def manifest(self) -> Manifest:
        return self.reader.manifest

    def files(self) -> list[Entry]:
        return self.reader.files()

    def stat(self, path: str) -> Entry:
        return self.reader.stat(path)

    def listdir(self, path: str = "") -> list[Entry]:
        return self.reader.listdir(path)

    def read_range(self, offset: int, size: int) -> bytes:
        return self.reader.sync_read(offset, size)

    def read_file(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        entry = self.reader.file_entry(path)
        offset = max(0, min(offset, entry.size))
        size = entry.size - offset if size is None else max(0, min(size, entry.size - offset))
        return self.read_range(entry.offset + offset, size)

    def open(self, path: str, *, buffer_size: int = 256 * 1024) -> io.BufferedReader:
        """File ``path`` as a seekable, read-only binary file object."""
        return io.BufferedReader(RangeFile(self.reader.sync_read, self.reader.file_entry(path)), buffer_size)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the reader's loop (for callers that need the chain meanwhile)."""
        return self._call(coro)
