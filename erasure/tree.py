"""The directory walk both packers use (:mod:`erasure.tarpack`, :mod:`erasure.folderpack`):
depth-first, names sorted, a directory right before its contents; symlinks are kept as links (never
followed); anything else but directories and regular files (devices, sockets, FIFOs) is refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import ParameterError

Kind = Literal["dir", "link", "file"]


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One entry under the root: ``rel`` is its "/"-separated path from the root; ``mode`` is
    normalised (0755 for directories and executables, 0644 for other files, 0777 for links);
    ``size`` is set for files, ``target`` for links."""

    rel: str
    path: Path
    kind: Kind
    mode: int
    size: int = 0
    target: str = ""


def walk(root: Path) -> Iterator[TreeEntry]:
    """Every entry under the directory ``root``; raises :class:`ParameterError` if ``root`` is not
    a directory or holds a special file."""
    if not root.is_dir():
        raise ParameterError(f"{root} is not a directory")
    yield from _walk(root, "")


def _walk(root: Path, prefix: str) -> Iterator[TreeEntry]:
    for name in sorted(os.listdir(root)):
        path = root / name
        entry = _entry(f"{prefix}{name}", path)
        yield entry
        if entry.kind == "dir":
            yield from _walk(path, entry.rel + "/")


def _entry(rel: str, path: Path) -> TreeEntry:
    st = path.lstat()
    if stat.S_ISDIR(st.st_mode):
        return TreeEntry(rel, path, "dir", 0o755)
    if stat.S_ISLNK(st.st_mode):
        return TreeEntry(rel, path, "link", 0o777, target=os.readlink(path))
    if stat.S_ISREG(st.st_mode):
        return TreeEntry(rel, path, "file", 0o755 if st.st_mode & stat.S_IXUSR else 0o644, size=st.st_size)
    raise ParameterError(f"cannot pack special file {path}")
