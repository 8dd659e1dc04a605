"""Shares as files in a local directory: the layout ``datasov pipeline`` reads and writes.

``DIR/manifest.json``, ``DIR/share-NNN.bin`` (the share bytes exactly as committed) and
``DIR/share-NNN.roots`` (its block roots, 32 bytes each: a cache, verified like any other input).
Files are written under a temporary name and renamed into place once complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import merkle
from .errors import FileIndexError
from .manifest import Manifest, Span

MANIFEST_NAME = "manifest.json"


def share_path(directory: Path, index: int) -> Path:
    return directory / f"share-{index:03d}.bin"


def roots_path(directory: Path, index: int) -> Path:
    return directory / f"share-{index:03d}.roots"


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextmanager
def share_writers(directory: Path, n: int) -> Iterator[list[BinaryIO]]:
    """Open n ``.part`` files; on success they are fsynced and renamed into place, on error removed."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = [share_path(directory, i).with_suffix(".bin.part") for i in range(n)]
    try:
        with ExitStack() as stack:
            files = [stack.enter_context(p.open("wb", buffering=1 << 20)) for p in parts]
            yield files
            for f in files:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        for p in parts:
            p.unlink(missing_ok=True)
        raise
    for i, p in enumerate(parts):
        os.replace(p, share_path(directory, i))


def write_roots(directory: Path, block_roots: Sequence[Sequence[bytes]]) -> None:
    for i, roots in enumerate(block_roots):
        write_atomic(roots_path(directory, i), b"".join(roots))


class FileShareSource:
    """One share file; block roots come from the ``.roots`` file if present, else are computed."""

    def __init__(self, path: Path, roots_file: Path | None, manifest: Manifest) -> None:
        self.path = path
        self._roots_file = roots_file
        self._manifest = manifest
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def block_roots(self) -> Sequence[bytes]:
        if self._roots_file is not None and self._roots_file.exists():
            raw = self._roots_file.read_bytes()
            return [raw[i : i + 32] for i in range(0, len(raw), 32)]
        m = self._manifest
        fd = self._open()
        roots = []
        for s in range(m.segment_count):
            size = m.block_size if s < m.segment_count - 1 else m.share_size - s * m.block_size
            roots.append(merkle.root(os.pread(fd, size, m.block_offset(s)), m.leaf_size))
        return roots

    def read_block(self, segment: int, offset: int, size: int) -> bytes:
        return os.pread(self._open(), size, offset)


def sources(directory: Path, manifest: Manifest) -> dict[int, FileShareSource]:
    """Every share file present in ``directory``."""
    found = {}
    for i in range(manifest.n):
        path = share_path(directory, i)
        if path.exists():
            found[i] = FileShareSource(path, roots_path(directory, i), manifest)
    return found


def _file_chunks(path: Path, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            yield chunk


@dataclass
class DatasetSource:
    """A file or folder about to be encoded: pass ``chunks`` and ``index`` to :func:`erasure.pipeline.encode`."""

    name: str
    content: str  # "file" | "folder"
    size: int  # exact plaintext bytes
    chunks: Iterator[bytes]
    index: Callable[[], Span] | None = None  # folders: the file index's span, once chunks are consumed


def open_dataset(path: Path) -> DatasetSource:
    """A file, or a directory packed as a folder (files back to back, then their file index)."""
    from . import folderpack

    if path.is_dir():
        pack = folderpack.FolderPack(path)
        return DatasetSource(path.resolve().name, "folder", pack.size, pack.chunks(), lambda: pack.span)
    if path.is_file():
        return DatasetSource(path.name, "file", path.stat().st_size, _file_chunks(path))
    raise FileNotFoundError(f"{path} is neither a file nor a directory")


def write_dataset(content: str, chunks: Iterator[bytes], out: Path, *, index: Span | None = None) -> None:
    """Write decoded plaintext: a file (atomically, via ``.part``) or, for a tar or a folder (whose
    file index lies at ``index``), a directory."""
    from . import folderpack, tarpack

    tmp = out.with_name(out.name + ".part")
    if content == "folder":  # spooled whole first: the file index comes last
        if index is None:
            raise FileIndexError("a folder dataset needs its file index's span")
        blob = out.with_name(out.name + ".blob.part")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            write_dataset("file", chunks, blob)
            with blob.open("rb") as spool:
                spool.seek(index.offset)
                table = folderpack.parse_index(spool.read(index.size), index)

                def read(entry: folderpack.Entry) -> Iterator[bytes]:
                    spool.seek(entry.offset)
                    left = entry.size
                    while left:
                        chunk = spool.read(min(left, 1 << 20))
                        left -= len(chunk)
                        yield chunk

                folderpack.unpack_entries(table, read, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            blob.unlink(missing_ok=True)
        os.replace(tmp, out)
        folderpack.sync_dir(out.parent)
        return
    if content == "tar":  # unpacked aside and moved into place whole: a failed decode leaves nothing
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tarpack.unpack(chunks, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.replace(tmp, out)
        return
    try:
        with tmp.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    folderpack.sync_dir(out.parent)  # the rename too
