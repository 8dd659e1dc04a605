"""Writing a share file past the page cache: :class:`ShareWriter`, sequential writes with ``O_DIRECT``.

A node writes every share it receives once and serves it later; written through the page cache,
each byte is copied into a new page-cache page (on this project's 2-core VM that copy, with the
allocation of pages never touched before, was a third of a node's CPU in a publish: 1.4-4 ms per
MiB, against 0.1-0.2 ms per MiB written with ``O_DIRECT``, measured in docs/streaming-publish.md).
With ``O_DIRECT`` the disk reads the bytes from the process's own buffer. The file is fsynced as
before (``O_DIRECT`` does not flush the device's cache nor the file's metadata).

``O_DIRECT`` wants the buffer's address, the file offset and the length aligned to the device's
block size: bytes are gathered in a page-aligned anonymous mapping and written in multiples of
:data:`ALIGN`; the last, shorter piece is written through the page cache at :meth:`finish` (the
flag cleared with ``fcntl``). Where the file system refuses ``O_DIRECT`` (tmpfs, some network file
systems: ``EINVAL`` at open or at the first write) the writer writes through the page cache, as
before, without copying.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
from pathlib import Path

ALIGN = 4096
"""Bytes an ``O_DIRECT`` write's address, offset and length are multiples of (covers 512-byte and
4 KiB logical blocks)."""

STAGE = 4 << 20
"""The aligned staging buffer's size (a batch larger than this is written in several pieces)."""

O_DIRECT: int = getattr(os, "O_DIRECT", 0)


class ShareWriter:
    """A new file written from its start, in order, past the page cache where the file system allows.

    Not thread-safe: one thread at a time (the upload's worker thread). ``write`` may keep up to
    ``ALIGN - 1`` bytes back; :meth:`finish` writes them, after which only ``fileno`` and ``close``
    are used (fsync, stamp)."""

    def __init__(self, path: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._fd = -1
        self.direct = False
        """True while writes bypass the page cache."""
        if O_DIRECT:
            try:
                self._fd = os.open(path, flags | O_DIRECT, 0o666)
                self.direct = True
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
        if self._fd < 0:
            self._fd = os.open(path, flags, 0o666)
        self._stage = mmap.mmap(-1, STAGE) if self.direct else None
        self._fill = 0  # bytes in the stage not written yet (< ALIGN between writes)
        self.closed = False

    def fileno(self) -> int:
        return self._fd

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` (all of it, or raise: ``ENOSPC`` and other ``OSError`` as ``os.write``)."""
        if self._stage is None:
            _write_all(self._fd, memoryview(data))
            return
        view = memoryview(data).cast("B")
        while view:
            take = min(STAGE - self._fill, len(view))
            self._stage[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            aligned = self._fill - self._fill % ALIGN
            if aligned:
                self._write_stage(aligned)

    def _write_stage(self, aligned: int) -> None:
        """Write the stage's first ``aligned`` bytes and move the rest to its start."""
        assert self._stage is not None
        with memoryview(self._stage) as stage:
            done = 0
            while done < aligned:
                try:
                    done += os.write(self._fd, stage[done:aligned])
                except OSError as err:
                    if err.errno != errno.EINVAL or not self.direct:
                        raise
                    self._buffered()  # this file system takes no O_DIRECT writes: the rest through the page cache
        rest = self._fill - aligned
        if rest:
            self._stage.move(0, aligned, rest)
        self._fill = rest

    def _buffered(self) -> None:
        """Clear ``O_DIRECT``: the following writes go through the page cache."""
        if self.direct:
            fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~O_DIRECT)
            self.direct = False

    def finish(self) -> None:
        """Write the bytes kept back (the file's unaligned end), through the page cache."""
        if self._stage is not None and self._fill:
            self._buffered()
            with memoryview(self._stage) as stage:
                _write_all(self._fd, stage[: self._fill])
            self._fill = 0

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._stage is not None:
            with contextlib.suppress(BufferError):
                self._stage.close()
        os.close(self._fd)


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        written = os.write(fd, view)
        view = view[written:]
