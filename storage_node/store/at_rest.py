"""Blocks verified at rest: which blocks of a share file have been checked against their roots since
the file last changed, so that a download sends them without reading and hashing them again.

A :class:`Verified` record holds the file's identity when its blocks were checked (device, inode,
size, modification and change times) and one flag per block. The identity is *stamped*: before the
node checks a file (:meth:`AtRest.start`), and right after an upload wrote and hashed one
(:func:`stamp`), it sets the file's modification time to a moment in the past (now - 1 s). Any later
write to the file through the filesystem (``write``, truncation, a writable ``mmap``, another hard
link) moves the modification time to the present, so the file no longer matches its record,
whatever the clock tick of file timestamps (without the stamp, a write within the tick of the check
would keep the mtime unchanged). A write that puts the mtime back by ``utime`` still changes the
change time, which no call sets. A record matches only the open file it is compared with (``fstat``
of the request's own descriptor, before each batch is sent), and lives in memory only.

What it trades: a download no longer re-hashes a block checked since the file last changed, so
corruption of the medium under an unchanged file (bits flipped on the disk, a write to the block
device, under the filesystem) reaches downloads until the record is ``reverify_after`` seconds old
(then the next download checks every block again) or the node restarts. While the verified pages
stay in the page cache they are the bytes that were checked; storage proofs and small ranges still
check what they read every time. ``reverify_after = 0`` checks every block of every download.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

REVERIFY_AFTER = 3600.0
"""Seconds a share's verified blocks are trusted before a download checks them again."""
FLAG_BYTES = 16 << 20  # the records' block flags, all shares together (one byte per block: 4 TiB of 256 KiB blocks)

Identity = tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns


def identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def stamp(fd: int) -> os.stat_result:
    """Set the open file's modification time to one second ago (no write can give it that value
    later: every write sets the present) and return its ``fstat`` after that."""
    past = time.time_ns() - 1_000_000_000
    os.utime(fd, ns=(past, past))
    return os.fstat(fd)


@dataclass(slots=True)
class Verified:
    """The blocks of one share file checked since ``identity`` was stamped on it, at ``since``."""

    identity: Identity
    since: float
    blocks: bytearray  # 1: the block matched its root

    def covers(self, first: int, last: int) -> bool:
        """Whether blocks ``first..last`` (inclusive) all matched."""
        return all(self.blocks[first : last + 1])

    def mark(self, first: int, last: int) -> None:
        self.blocks[first : last + 1] = b"\x01" * (last - first + 1)

    def matches(self, fd: int) -> bool:
        """Whether the open file is still, unchanged, the one these blocks were checked in."""
        return identity(os.fstat(fd)) == self.identity


class AtRest:
    """The records of one store, by (dataset, share index); used on the event loop only."""

    def __init__(self, *, reverify_after: float = REVERIFY_AFTER, clock: Callable[[], float] = time.monotonic) -> None:
        self.reverify_after = reverify_after
        self._clock = clock
        self._records: OrderedDict[tuple[str, int], Verified] = OrderedDict()
        self._flag_bytes = 0

    def lookup(self, key: tuple[str, int], fd: int) -> Verified | None:
        """The record of the share open as ``fd``, if it is still that file unchanged and younger
        than ``reverify_after``; else None (and a stale record is dropped)."""
        found = self._records.get(key)
        if found is None:
            return None
        if self._clock() - found.since >= self.reverify_after or not found.matches(fd):
            self.forget(key)
            return None
        self._records.move_to_end(key)
        return found

    def start(self, key: tuple[str, int], fd: int, blocks: int) -> Verified | None:
        """A new empty record for the share open as ``fd``, stamped now (before its blocks are read
        to be checked); None when records are off or the file cannot be stamped."""
        if self.reverify_after <= 0:
            return None
        try:
            st = stamp(fd)
        except OSError:  # not the file's owner (a store copied in by another user): check every time
            return None
        return self._put(key, Verified(identity(st), self._clock(), bytearray(blocks)))

    def uploaded(self, key: tuple[str, int], ident: Identity, blocks: int) -> None:
        """Every block of a share just received: its bytes were hashed as they were written, and the
        file stamped after its fsync (``ident``: its identity after the rename into place)."""
        if self.reverify_after > 0:
            self._put(key, Verified(ident, self._clock(), bytearray(b"\x01" * blocks)))

    def forget(self, key: tuple[str, int]) -> None:
        dropped = self._records.pop(key, None)
        if dropped is not None:
            self._flag_bytes -= len(dropped.blocks)

    def _put(self, key: tuple[str, int], record: Verified) -> Verified:
        """Keep ``record`` (the newest); the least recently used go while the flags exceed ``FLAG_BYTES``."""
        self.forget(key)
        self._records[key] = record
        self._flag_bytes += len(record.blocks)
        while self._flag_bytes > FLAG_BYTES and len(self._records) > 1:
            _, dropped = self._records.popitem(last=False)
            self._flag_bytes -= len(dropped.blocks)
        return record
