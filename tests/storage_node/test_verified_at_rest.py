"""Blocks verified at rest (``storage_node/store/at_rest.py``): a download sends without hashing again
the blocks checked since their file last changed (on upload, or by an earlier download), and a block
changed on disk after it was checked is never served: fault injection by every way a local write
can reach the file (a write, the same with the mtime put back, a writable mmap, mid-download)."""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from erasure import merkle
from storage_node.client import NodeClient, RemoteError
from storage_node.errors import CorruptShare
from storage_node.store import at_rest, reads
from storage_node.store.reads import VerifiedReads
from storage_node.store.shares import ShareStore

from .conftest import NodeFactory, publisher
from .test_api import DS as API_DS
from .test_api import order_for
from .test_store import BLOCK, DS, LEAF, put

pytestmark = pytest.mark.asyncio(loop_scope="function")

BLOCKS = 9
Spans = list[tuple[int, int]]


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (first, last) blocks of every batch read and hashed; two blocks per batch."""
    monkeypatch.setattr(reads, "READ_BATCH", 2 * BLOCK)
    seen: list[tuple[int, int]] = []
    real = VerifiedReads._check_blocks

    def spy(fd: int, record: object, first: int, last: int, roots: list[bytes]) -> int | None:
        seen.append((first, last))
        return real(fd, record, first, last, roots)  # type: ignore[arg-type]

    monkeypatch.setattr(VerifiedReads, "_check_blocks", staticmethod(spy))
    return seen


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ShareStore]:
    s = ShareStore(tmp_path / "node", capacity=1 << 20)
    yield s
    s.close()


async def download(store: ShareStore, *, during: Callable[[], None] | None = None) -> tuple[Spans, bool]:
    """The spans of a whole-share download and whether it ended in CorruptShare; ``during`` runs
    once, after the first span (as if a local process wrote to the file mid-download)."""
    record = await store.get(DS, 0)
    got: Spans = []
    corrupt = False
    with store.share_path(DS, 0).open("rb") as f:
        spans = store.verified_spans(record, f.fileno(), 0, record.size)
        try:
            async for span in spans:
                got.append(span)
                if during is not None and len(got) == 1:
                    during()
        except CorruptShare:
            corrupt = True
        finally:
            await spans.aclose()
    return got, corrupt


def flip(path: Path, offset: int, *, keep_mtime: bool = False) -> None:
    before = os.stat(path)
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))
    if keep_mtime:  # the write's trace in the modification time put back: the change time remains
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def flip_by_mmap(path: Path, offset: int) -> None:
    with path.open("r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[offset] ^= 0x01
        m.flush()


async def test_a_download_after_the_upload_hashes_no_block_again(
    store: ShareStore, checks: list[tuple[int, int]]
) -> None:
    data = os.urandom(BLOCKS * BLOCK + 100)
    await put(store, data)
    got, corrupt = await download(store)
    assert not corrupt
    assert checks == []  # the upload hashed these very bytes as it wrote them
    assert sum(n for _, n in got) == len(data)


@pytest.mark.parametrize("how", ["write", "write, mtime put back", "mmap"])
@pytest.mark.parametrize("verified_by", ["upload", "download"])
async def test_a_block_changed_after_verification_is_never_served(
    tmp_path: Path, checks: list[tuple[int, int]], how: str, verified_by: str
) -> None:
    data = os.urandom(BLOCKS * BLOCK)
    home = tmp_path / "node"
    store = ShareStore(home, capacity=1 << 20)
    try:
        await put(store, data)
        if verified_by == "download":  # a restarted node: nothing verified at rest until a download checks
            store.close()
            store = ShareStore(home, capacity=1 << 20)
            spans = [(b * BLOCK, 2 * BLOCK) for b in range(0, 8, 2)] + [(8 * BLOCK, BLOCK)]
            assert (await download(store)) == (spans, False)
            assert len(checks) == 5
            checks.clear()
            assert not (await download(store))[1]
            assert checks == []  # the second download trusts what the first one checked
        path = store.share_path(DS, 0)
        bad = 6
        if how == "mmap":
            flip_by_mmap(path, bad * BLOCK + 11)
        else:
            flip(path, bad * BLOCK + 11, keep_mtime=how != "write")
        got, corrupt = await download(store)
        assert corrupt
        assert got[-1][0] + got[-1][1] == bad * BLOCK  # everything before the changed block, nothing of it
        assert store.corruptions == 1
    finally:
        store.close()


async def test_a_block_changed_mid_download_is_never_served(store: ShareStore, checks: list[tuple[int, int]]) -> None:
    data = os.urandom(BLOCKS * BLOCK)
    await put(store, data)
    path = store.share_path(DS, 0)
    got, corrupt = await download(store, during=lambda: flip(path, 7 * BLOCK, keep_mtime=True))
    assert corrupt
    assert got[-1][0] + got[-1][1] == 7 * BLOCK
    assert checks  # the rest of the file was checked again, from the first batch not yet sent


async def test_verified_blocks_are_checked_again_after_reverify_after(
    store: ShareStore, checks: list[tuple[int, int]]
) -> None:
    now = [0.0]
    store.at_rest._clock = lambda: now[0]  # the store's clock, advanced by the test
    store.at_rest.reverify_after = 60.0
    await put(store, os.urandom(3 * BLOCK))
    now[0] = 59.0
    await download(store)
    assert checks == []
    now[0] = 60.0
    await download(store)
    assert checks == [(0, 1), (2, 2)]
    checks.clear()
    await download(store)
    assert checks == []


async def test_reverify_after_zero_checks_every_download(tmp_path: Path, checks: list[tuple[int, int]]) -> None:
    store = ShareStore(tmp_path / "node", capacity=1 << 20, reverify_after=0)
    try:
        await put(store, os.urandom(3 * BLOCK))
        for _ in range(2):
            checks.clear()
            await download(store)
            assert checks == [(0, 1), (2, 2)]
    finally:
        store.close()


async def test_an_activated_pending_share_is_verified_at_rest(store: ShareStore, checks: list[tuple[int, int]]) -> None:
    data = os.urandom(4 * BLOCK + 5)
    up = await store.begin_pending(7, 0, size=len(data), leaf_size=LEAF, block_size=BLOCK, owner="0x" + "11" * 20)
    await up.write(data)
    held = await up.commit()
    await store.activate(7, 0, dataset=DS, root=held.root)
    assert held.root == merkle.root(data, LEAF)
    got, corrupt = await download(store)
    assert (checks, corrupt) == ([], False)
    assert sum(n for _, n in got) == len(data)
    flip(store.share_path(DS, 0), 3, keep_mtime=True)
    assert (await download(store)) == ([], True)


async def test_a_node_never_serves_a_block_changed_since_its_upload(make_node: NodeFactory) -> None:
    """Through HTTP: a whole-share GET of a share changed on disk (its mtime put back) after the
    upload verified it is the clean 503 of a corrupt first block."""
    node = await make_node()
    data = os.urandom(6 * 4096)
    async with NodeClient(timeout=30, retries=1) as client:
        await client.put_share(node.url, order_for(node, data), publisher(), data)
        assert await client.get_share(node.url, API_DS, 0) == data
        assert node.store is not None
        flip(node.store.share_path(API_DS, 0), 1, keep_mtime=True)
        with pytest.raises(RemoteError) as info:
            await client.get_share(node.url, API_DS, 0)
        assert info.value.code == "share_corrupted"


async def test_records_are_bounded_by_their_flag_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The least recently used records go first once all flags together exceed ``FLAG_BYTES``."""
    monkeypatch.setattr(at_rest, "FLAG_BYTES", 10)
    records = at_rest.AtRest()
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with path.open("rb") as f:
        for share in range(3):
            assert records.start((DS, share), f.fileno(), 4) is not None
        # 12 flag bytes > 10: share 0 went; the newest (share 2's stamp) matches the file
        assert records.lookup((DS, 0), f.fileno()) is None
        assert records.lookup((DS, 2), f.fileno()) is not None
        assert records._flag_bytes == 8
