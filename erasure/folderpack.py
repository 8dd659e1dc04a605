"""Folder datasets (format v2): files back to back, then an index that says where each one is.

Plaintext layout: the regular files of the tree in sorted path order (depth first, as
:mod:`erasure.tarpack` walks it), their bytes back to back with no headers or padding, followed by
the file index: canonical JSON (sorted keys, no whitespace)::

    {"format": "datasov-file-index", "version": 1,
     "entries": [{"path": "a/b.csv", "type": "file", "offset": 0, "size": 120,
                  "sha256": "<hex>", "mode": 420},
                 {"path": "a", "type": "dir"}, {"path": "l", "type": "link", "target": "a/b.csv"}]}

The index is encrypted with the rest of the dataset (file names are data too); the manifest records
only its plaintext span (``Manifest.index``), so a reader finds it without reading anything else,
and a byte range of one file maps straight to the few segments that cover it. Offsets are relative
to the start of the plaintext. Parsing is strict (:class:`~erasure.errors.FileIndexError`): safe
relative paths only, files in order without gaps or overlaps, ending where the index starts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import FileIndexError, ParameterError
from .manifest import Span
from .tree import walk

FORMAT = "datasov-file-index"
VERSION = 1
MAX_INDEX_BYTES = 64 * 1024 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    type: str  # "file" | "dir" | "link"
    offset: int = 0
    size: int = 0
    sha256: bytes = b""
    mode: int = 0o644
    target: str = ""

    def to_json(self) -> dict[str, Any]:
        if self.type == "file":
            return {
                "path": self.path,
                "type": "file",
                "offset": self.offset,
                "size": self.size,
                "sha256": self.sha256.hex(),
                "mode": self.mode,
            }
        if self.type == "link":
            return {"path": self.path, "type": "link", "target": self.target}
        return {"path": self.path, "type": "dir"}


@dataclass(frozen=True)
class FileIndex:
    """Every entry of a folder dataset, by path (no leading or trailing slash)."""

    entries: dict[str, Entry]

    def files(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.type == "file"]

    def get(self, path: str) -> Entry:
        """The entry at ``path`` (links are not followed); :class:`FileIndexError` if none."""
        entry = self.entries.get(normalise(path))
        if entry is None:
            raise FileIndexError(f"no such file in the dataset: {path!r}")
        return entry

    def children(self, path: str) -> list[Entry]:
        """Entries directly under directory ``path`` ("" is the top)."""
        top = normalise(path)
        if top and self.get(top).type != "dir":
            raise FileIndexError(f"not a directory in the dataset: {path!r}")
        prefix = top + "/" if top else ""
        return [e for p, e in self.entries.items() if p.startswith(prefix) and "/" not in p[len(prefix) :] and p != top]

    def to_bytes(self) -> bytes:
        doc = {"format": FORMAT, "version": VERSION, "entries": [e.to_json() for e in self.entries.values()]}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def normalise(path: str) -> str:
    """``path`` as an index key: "/"-separated, relative, without "." parts or trailing slashes."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise FileIndexError(f"path escapes the dataset: {path!r}")
    return "/".join(parts)


class FolderPack:
    """Pack a directory: iterate :meth:`chunks` for the plaintext; then :attr:`span` is the index's.

    ``size`` is the exact plaintext length, known before reading any file (for progress bars)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._plan: list[tuple[Entry, Path]] = []
        offset = 0
        for node in walk(root):
            if node.kind == "file":
                self._plan.append((Entry(node.rel, "file", offset, node.size, bytes(32), node.mode), node.path))
                offset += node.size
            else:
                self._plan.append((Entry(node.rel, node.kind, target=node.target), node.path))
        self._data_size = offset
        self._index_size = len(FileIndex({e.path: e for e, _ in self._plan}).to_bytes())  # hashes are fixed-size
        self.size = self._data_size + self._index_size
        self._span: Span | None = None

    @property
    def span(self) -> Span:
        """Where the file index lies in the plaintext (once :meth:`chunks` is exhausted)."""
        if self._span is None:
            raise ParameterError("the folder has not been packed yet")
        return self._span

    def chunks(self, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        done: dict[str, Entry] = {}
        for entry, path in self._plan:
            if entry.type != "file":
                done[entry.path] = entry
                continue
            digest = hashlib.sha256()
            remaining = entry.size
            with path.open("rb") as f:
                while remaining:
                    chunk = f.read(min(chunk_size, remaining))
                    if not chunk:
                        raise ParameterError(f"{path} shrank while being packed")
                    remaining -= len(chunk)
                    digest.update(chunk)
                    yield chunk
                if f.read(1):
                    raise ParameterError(f"{path} grew while being packed")
            done[entry.path] = Entry(entry.path, "file", entry.offset, entry.size, digest.digest(), entry.mode)
        index = FileIndex(done).to_bytes()
        if len(index) != self._index_size:
            raise ParameterError("the folder changed while being packed")
        self._span = Span(self._data_size, len(index))
        yield index


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FileIndexError(f"file index: {what} must be an integer >= 0")
    return value


def parse_index(raw: bytes, span: Span) -> FileIndex:
    """Parse and check a file index read from ``span`` of the plaintext."""
    if len(raw) != span.size or span.size > MAX_INDEX_BYTES:
        raise FileIndexError(f"file index is {len(raw)} bytes, the manifest says {span.size} (max {MAX_INDEX_BYTES})")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise FileIndexError(f"file index is not valid JSON: {err}") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise FileIndexError(f"not a {FORMAT} version {VERSION} document")
    if set(doc) != {"format", "version", "entries"} or not isinstance(doc["entries"], list):
        raise FileIndexError("file index: fields must be format, version, entries")
    entries: dict[str, Entry] = {}
    offset = 0
    for item in doc["entries"]:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise FileIndexError("file index: every entry needs a path")
        path = item["path"]
        if not path or normalise(path) != path or path in entries or "\x00" in path:
            raise FileIndexError(f"file index: bad or repeated path {path[:80]!r}")
        parent = path.rpartition("/")[0]
        if parent and (parent not in entries or entries[parent].type != "dir"):
            raise FileIndexError(f"file index: {path!r} comes before its directory")
        kind = item.get("type")
        if kind == "file":
            if set(item) != {"path", "type", "offset", "size", "sha256", "mode"}:
                raise FileIndexError(f"file index: {path!r}: wrong fields")
            if _int(item["offset"], "offset") != offset:
                raise FileIndexError(f"file index: {path!r} does not start where the file before it ends")
            size = _int(item["size"], "size")
            digest = item["sha256"]
            if not isinstance(digest, str) or len(digest) != 64 or digest != digest.lower():
                raise FileIndexError(f"file index: {path!r}: sha256 must be 32 bytes of lowercase hex")
            try:
                sha = bytes.fromhex(digest)
            except ValueError as err:
                raise FileIndexError(f"file index: {path!r}: sha256 is not hex") from err
            mode = _int(item["mode"], "mode")
            if mode not in (0o644, 0o755):
                raise FileIndexError(f"file index: {path!r}: mode must be 0644 or 0755")
            entries[path] = Entry(path, "file", offset, size, sha, mode)
            offset += size
        elif kind == "dir" and set(item) == {"path", "type"}:
            entries[path] = Entry(path, "dir")
        elif kind == "link" and set(item) == {"path", "type", "target"} and isinstance(item["target"], str):
            entries[path] = Entry(path, "link", target=item["target"])
        else:
            raise FileIndexError(f"file index: {path!r}: unknown type or fields")
    if offset != span.offset:
        raise FileIndexError(f"file index: files end at {offset}, the index starts at {span.offset}")
    return FileIndex(entries)


def sync_dir(path: Path) -> None:
    """fsync a directory: the names created, renamed or removed in it are on disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unpack_entries(index: FileIndex, read: Any, dest: Path) -> None:
    """Recreate the tree under ``dest``: ``read(entry)`` yields a file's bytes, checked against its
    SHA-256 (:class:`FileIndexError` on a mismatch). Links stay links; none may point outside.
    Every file and directory of the tree is fsynced before it returns, as a fetched single file is:
    the caller renames ``dest`` into place and syncs the directory it is renamed in."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in index.entries.values():
        target = dest / PurePosixPath(entry.path)
        if entry.type == "dir":
            target.mkdir(exist_ok=True)
        elif entry.type == "link":
            resolved = (target.parent / entry.target).resolve()
            if os.path.isabs(entry.target) or not resolved.is_relative_to(dest.resolve()):
                raise FileIndexError(f"link {entry.path!r} points outside the dataset")
            target.symlink_to(entry.target)
        else:
            digest = hashlib.sha256()
            with target.open("wb") as f:
                for chunk in read(entry):
                    digest.update(chunk)
                    f.write(chunk)
                if digest.digest() != entry.sha256:
                    raise FileIndexError(f"{entry.path!r} does not match its SHA-256 in the file index")
                os.fchmod(f.fileno(), entry.mode)
                f.flush()
                os.fsync(f.fileno())
    for entry in index.entries.values():
        if entry.type == "dir":
            sync_dir(dest / PurePosixPath(entry.path))
    sync_dir(dest)
