"""Deterministic tar streams: the same directory tree always packs to the same bytes.

Entries are sorted by path, times are zero, owners are 0/"" and modes are normalised to
0755 (directories, executables) or 0644; symlinks are kept as links; anything else (devices,
sockets, FIFOs) is refused. Unpacking uses the tarfile "data" filter: no absolute paths, no
escapes out of the destination, no special files.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import ParameterError
from .tree import TreeEntry, walk

_BLOCK = tarfile.BLOCKSIZE
_CHUNK = 1 << 20


_TYPES = {"dir": tarfile.DIRTYPE, "link": tarfile.SYMTYPE, "file": tarfile.REGTYPE}


def _tarinfo(entry: TreeEntry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.rel)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type, info.mode, info.size, info.linkname = _TYPES[entry.kind], entry.mode, entry.size, entry.target
    return info


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


def pack(root: Path, chunk_size: int = _CHUNK) -> Iterator[bytes]:
    """Stream the directory ``root`` as a deterministic tar archive."""
    for entry in walk(root):
        info = _tarinfo(entry)
        yield _header(info)
        if info.type != tarfile.REGTYPE:
            continue
        remaining = info.size
        with entry.path.open("rb") as f:
            while remaining:
                chunk = f.read(min(chunk_size, remaining))
                if not chunk:
                    raise ParameterError(f"{entry.path} shrank while being packed")
                remaining -= len(chunk)
                yield chunk
        if info.size % _BLOCK:
            yield bytes(_BLOCK - info.size % _BLOCK)
    yield bytes(2 * _BLOCK)


def packed_size(root: Path) -> int:
    """Length of ``pack(root)`` without reading file contents."""
    total = 2 * _BLOCK
    for entry in walk(root):
        info = _tarinfo(entry)
        total += len(_header(info))
        if info.type == tarfile.REGTYPE:
            total += -(-info.size // _BLOCK) * _BLOCK
    return total


class IterReader(io.RawIOBase):
    """A read-only binary file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._it = iter(chunks)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            nxt = next(self._it, None)
            if nxt is None:
                return 0
            self._buf = memoryview(nxt)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def unpack(chunks: Iterable[bytes], dest: Path) -> None:
    """Extract a tar stream into ``dest`` (created if missing) with the safe "data" filter."""
    dest.mkdir(parents=True, exist_ok=True)
    reader = io.BufferedReader(IterReader(chunks), buffer_size=_CHUNK)
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            tar.extractall(dest, filter="data")
    except tarfile.TarError as err:
        raise ParameterError(f"dataset is not a valid tar archive: {err}") from err
    # Drain anything after the end-of-archive marker so upstream integrity checks still run.
    while reader.read(_CHUNK):
        pass
