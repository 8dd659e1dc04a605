"""The synchronous face of :class:`market.reader.DatasetReader` for data tools (pandas, pyarrow,
Hugging Face ``datasets``, data loaders): :class:`SyncDatasetReader` runs the async reader on an
event loop of its own in a daemon thread; :meth:`SyncDatasetReader.open` returns a seekable,
read-only binary file object (:class:`RangeFile` in an ``io.BufferedReader``)."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from erasure.folderpack import Entry
from erasure.manifest import Manifest

from .reader import DatasetReader

T = TypeVar("T")


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
