"""The node's read path: whole shares through the kernel's sendfile, small ranges leaf by leaf from
an open descriptor (also across a block boundary), and nothing stale after a share is replaced."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from erasure import merkle
from storage_node.client import BrokenResponse, NodeClient
from storage_node.errors import CorruptShare, ShareNotFound
from storage_node.store.shares import ShareStore

from .conftest import NodeFactory, publisher
from .test_api import BLOCK, DS, expect, order_for
from .test_store import BLOCK as STORE_BLOCK
from .test_store import DS as STORE_DS
from .test_store import put

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_whole_shares_and_large_ranges_go_through_sendfile(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await make_node()
    data = os.urandom(70 * BLOCK + 123)  # more than one verification batch (4 MiB), a short last block
    loop = asyncio.get_running_loop()
    real = loop.sendfile
    sent: list[tuple[int, int]] = []

    async def spy(transport: Any, file: Any, offset: int = 0, count: int | None = None, **kw: Any) -> int:
        assert count is not None
        sent.append((offset, count))
        return await real(transport, file, offset, count, **kw)

    monkeypatch.setattr(loop, "sendfile", spy)  # the node runs on this loop: the real sendfile still sends
    async with NodeClient(timeout=30, retries=1) as client:
        await client.put_share(node.url, order_for(node, data), publisher(), data)
        assert await client.get_share(node.url, DS, 0) == data
        assert len(sent) >= 2
        assert sent[0][0] == 0
        assert sum(c for _, c in sent) == len(data)
        assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(sent))  # in order, no gap
        sent.clear()
        start, end = BLOCK - 10, 3 * BLOCK + 10
        assert await client.get_share(node.url, DS, 0, start=start, end=end) == data[start:end]
        assert sent == [(start, end - start)]
        sent.clear()
        assert await client.get_share(node.url, DS, 0, start=5, end=5 + 4096) == data[5 : 5 + 4096]
        assert sent == []  # a small range is one in-memory answer, verified leaf by leaf


async def test_a_share_quarantined_mid_download_still_aborts(make_node: NodeFactory) -> None:
    """Corruption in a later verification batch: the spans before it went out, then the cut."""
    node = await make_node()
    data = os.urandom(80 * BLOCK)
    async with NodeClient(timeout=30, retries=1) as client:
        await client.put_share(node.url, order_for(node, data), publisher(), data)
        assert node.store is not None
        path = node.store.share_path(DS, 0)
        with path.open("r+b") as f:  # block 75: in the second 4 MiB batch
            f.seek(75 * BLOCK + 3)
            f.write(b"\x00" if data[75 * BLOCK + 3] else b"\x01")
        with pytest.raises(BrokenResponse):
            await client.get_share(node.url, DS, 0)
        await expect(404, "share_not_found", client.get_share(node.url, DS, 0, start=0, end=10))
        assert node.store.corruptions == 1


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = ShareStore(tmp_path / "node", capacity=10 << 20)
    yield s
    s.close()


async def test_small_ranges_across_block_boundaries(store: ShareStore) -> None:
    data = os.urandom(3 * STORE_BLOCK + 700)
    await put(store, data)
    record = await store.get(STORE_DS, 0)
    spans = [
        (s, s + n)
        for boundary in (STORE_BLOCK, 2 * STORE_BLOCK, 3 * STORE_BLOCK)
        for s in range(boundary - 1100, boundary + 60, 53)
        for n in (1, 200, STORE_BLOCK // 4)
        if s + n <= len(data)
    ]
    for _ in range(2):  # first: whole blocks verified, digests kept; then leaf by leaf from the page cache
        for start, end in spans:
            assert store.is_small(record, start, end)
            assert await store.read_small(record, start, end) == data[start:end], (start, end)
    with pytest.raises(ShareNotFound):
        await store.read_small(record, len(data) - 10, len(data) + 1)


async def test_corruption_past_the_boundary_of_a_small_read_quarantines(store: ShareStore) -> None:
    data = os.urandom(2 * STORE_BLOCK)
    await put(store, data)
    record = await store.get(STORE_DS, 0)
    start, end = STORE_BLOCK - 500, STORE_BLOCK + 500
    assert await store.read_small(record, start, end) == data[start:end]  # both blocks' digests now kept
    path = store.share_path(STORE_DS, 0)
    with path.open("r+b") as f:  # the same inode: what the open descriptor reads
        f.seek(STORE_BLOCK + 400)
        f.write(bytes([data[STORE_BLOCK + 400] ^ 0x40]))
    with pytest.raises(CorruptShare):
        await store.read_small(record, start, end)
    with pytest.raises(ShareNotFound):
        await store.get(STORE_DS, 0)


async def test_a_replaced_share_is_read_from_its_new_file(store: ShareStore) -> None:
    old, new = os.urandom(2 * STORE_BLOCK), os.urandom(2 * STORE_BLOCK)
    await put(store, old)
    for _ in range(2):  # the second read goes through the kept descriptor
        assert await store.read_small(await store.get(STORE_DS, 0), 100, 900) == old[100:900]
    await store.delete(STORE_DS, 0)
    await put(store, new)
    record = await store.get(STORE_DS, 0)
    assert record.root == merkle.root(new, 1024)
    for _ in range(2):
        assert await store.read_small(record, 100, 900) == new[100:900]


async def test_warm_small_reads_touch_neither_the_index_nor_a_thread(
    store: ShareStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 * STORE_BLOCK)
    await put(store, data)
    record = await store.get(STORE_DS, 0)
    spans = [(s, s + 700) for s in range(0, len(data) - 700, 333)]
    for start, end in spans:  # warm: each block verified once, its leaf digests kept
        await store.read_small(record, start, end)
    statements: list[str] = []
    store.index.db.set_trace_callback(statements.append)
    hops: list[object] = []
    real = asyncio.to_thread

    async def counted(fn: Any, *args: Any) -> Any:
        hops.append(fn)
        return await real(fn, *args)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    for start, end in spans:
        again = await store.get(STORE_DS, 0)
        assert await store.read_small(again, start, end) == data[start:end]
    assert statements == []  # no per-request database work
    if _nowait_works(store.share_path(STORE_DS, 0)):
        assert hops == []  # served on the loop from the page cache through the kept descriptor


def _nowait_works(path: Path) -> bool:
    """Whether this filesystem answers RWF_NOWAIT reads (else small reads always take a thread)."""
    flag = getattr(os, "RWF_NOWAIT", None)
    if flag is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.preadv(fd, [bytearray(16)], 0, flag)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


async def test_a_client_leaving_mid_download_leaks_nothing(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    node = await make_node()
    data = os.urandom(160 * BLOCK)  # 10 MiB: more than the socket buffers hold
    async with NodeClient(timeout=30, retries=1) as client:
        await client.put_share(node.url, order_for(node, data), publisher(), data)
        host, port = node.url.removeprefix("http://").split(":")
        open_before = len(os.listdir("/proc/self/fd"))
        for _ in range(3):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(f"GET /v1/shares/{DS}/0 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert (await reader.readexactly(12)).endswith(b"200")
            await reader.readexactly(1 << 20)  # part of the body, then gone
            writer.transport.abort()
        assert await client.get_share(node.url, DS, 0, start=7, end=7 + 5000) == data[7 : 7 + 5000]
        assert await client.get_share(node.url, DS, 0) == data  # and the node still serves whole shares
        for _ in range(200):  # the aborted handlers finish on the loop: wait for their files to close
            if len(os.listdir("/proc/self/fd")) <= open_before + 1:  # + the kept small-read descriptor
                break
            await asyncio.sleep(0.01)
        assert len(os.listdir("/proc/self/fd")) <= open_before + 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
