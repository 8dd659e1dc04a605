"""Share files written past the page cache (:class:`storage_node.store.direct.ShareWriter`): any
sequence of writes gives the file those bytes exactly, with ``O_DIRECT`` where the file system takes
it and through the page cache where it does not (at open, or at a write), and an upload into the
store writes its part file that way."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from erasure import merkle
from storage_node.store import direct
from storage_node.store.direct import ALIGN, STAGE, ShareWriter
from storage_node.store.shares import ShareStore

from .test_store import BLOCK, DS, LEAF

POOL = os.urandom(STAGE + 3 * ALIGN)


def _supports_direct(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | direct.O_DIRECT, 0o600))
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)
    return bool(direct.O_DIRECT)


def _write(path: Path, sizes: list[int]) -> tuple[bytes, bool]:
    """Write pieces of POOL of the given sizes; (what was written, whether the writer was direct at first)."""
    writer = ShareWriter(path)
    was_direct = writer.direct
    expected = bytearray()
    at = 0
    try:
        for size in sizes:
            piece = POOL[at % 1000 : at % 1000 + size]
            writer.write(piece)
            expected += piece
            at += size
        writer.finish()
        os.fsync(writer.fileno())
    finally:
        writer.close()
    return bytes(expected), was_direct


@settings(max_examples=25, deadline=None)
@example(sizes=[ALIGN])
@example(sizes=[1, ALIGN - 1, ALIGN + 1])
@example(sizes=[STAGE + ALIGN + 5])
@example(sizes=[])
@given(sizes=st.lists(st.one_of(st.integers(1, 3 * ALIGN), st.integers(1, STAGE + ALIGN)), max_size=5))
def test_any_writes_give_the_file_exactly_their_bytes(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        path = Path(tmp) / "share.part"
        expected, was_direct = _write(path, sizes)
        assert path.read_bytes() == expected
        assert was_direct == _supports_direct(Path(tmp))


def test_a_file_system_refusing_o_direct_at_open_is_written_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tmpfs and some network file systems refuse ``O_DIRECT`` at open (``EINVAL``); the refusal is
    made here, so the test runs on any file system."""
    real = os.open

    def refusing(path: str | Path, flags: int, mode: int = 0o777) -> int:
        if flags & direct.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(path, flags, mode)

    monkeypatch.setattr(direct.os, "open", refusing)
    path = tmp_path / "share.part"
    expected, was_direct = _write(path, [ALIGN + 3, 2 * ALIGN, 17])
    assert not was_direct
    assert path.read_bytes() == expected


def test_a_write_refused_with_einval_goes_on_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems accept O_DIRECT at open and refuse the write: nothing is lost or doubled."""
    if not _supports_direct(tmp_path):
        pytest.skip("this file system takes no O_DIRECT")
    real = os.write
    refused = []

    def write(fd: int, data: memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & direct.O_DIRECT:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data)

    monkeypatch.setattr(direct.os, "write", write)
    path = tmp_path / "share.part"
    expected, was_direct = _write(path, [3 * ALIGN + 1, ALIGN, 5])
    assert was_direct
    assert refused == [3 * ALIGN]
    assert path.read_bytes() == expected


def test_an_upload_writes_its_part_file_past_the_page_cache(tmp_path: Path) -> None:
    if not _supports_direct(tmp_path):
        pytest.skip("this file system takes no O_DIRECT")
    data = POOL[: 3 * BLOCK + 100]

    async def main() -> None:
        store = ShareStore(tmp_path / "node", capacity=1 << 20)
        try:
            up = await store.begin(
                DS, 0, root=merkle.root(data, LEAF), size=len(data), leaf_size=LEAF, block_size=BLOCK
            )
            assert up._file.direct
            await up.write(data)
            await up.commit()
            assert store.share_path(DS, 0).read_bytes() == data
        finally:
            store.close()

    asyncio.run(main())
