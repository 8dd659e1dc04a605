"""A pending share's fsync is not waited for by its upload's answer (the publisher waits for every
node's answer before it commits the root): it runs in the background while the root is committed,
and activation waits for it before the share is indexed, so an indexed share is always on disk (a
pending one is dropped at restart anyway)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from erasure import merkle
from storage_node.errors import ShareNotFound
from storage_node.store import pending, uploads
from storage_node.store.shares import ShareStore

from .test_store import BLOCK, DS, LEAF

pytestmark = pytest.mark.asyncio(loop_scope="function")

OWNER = "0x" + "11" * 20


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ShareStore]:
    s = ShareStore(tmp_path / "node", capacity=1 << 20)
    yield s
    s.close()


@pytest.fixture
def held_fsyncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[int]]]:
    """File fsyncs (not directories') block until the event is set; the list counts those done."""
    gate = threading.Event()
    done: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            assert gate.wait(10), "fsync held too long"
            done.append(fd)
        real(fd)

    for module in (uploads, pending):
        monkeypatch.setattr(module.os, "fsync", fsync)
    yield gate, done
    gate.set()


async def test_a_pending_upload_answers_before_its_fsync_and_activation_waits_for_it(
    store: ShareStore, held_fsyncs: tuple[threading.Event, list[int]]
) -> None:
    gate, done = held_fsyncs
    data = os.urandom(3 * BLOCK + 7)
    up = await store.begin_pending(9, 1, size=len(data), leaf_size=LEAF, block_size=BLOCK, owner=OWNER)
    await up.write(data)
    held = await asyncio.wait_for(up.commit(), 5)  # answered with the fsync still held
    assert held.root == merkle.root(data, LEAF)
    assert done == []
    activating = asyncio.ensure_future(store.activate(9, 1, dataset=DS, root=held.root))
    finished, _ = await asyncio.wait({activating}, timeout=0.2)  # it waits for the fsync: never done here
    assert not finished
    with pytest.raises(ShareNotFound):  # not indexed before its bytes are on disk
        await store.get(DS, 1)
    gate.set()
    record = await asyncio.wait_for(activating, 10)
    assert len(done) == 2  # the share's bytes and its block roots
    assert record.root == held.root
    assert store.share_path(DS, 1).read_bytes() == data


async def test_a_pending_share_dropped_before_its_fsync_leaves_nothing(
    store: ShareStore, held_fsyncs: tuple[threading.Event, list[int]]
) -> None:
    gate, _ = held_fsyncs
    data = os.urandom(2 * BLOCK)
    up = await store.begin_pending(9, 2, size=len(data), leaf_size=LEAF, block_size=BLOCK, owner=OWNER)
    await up.write(data)
    await asyncio.wait_for(up.commit(), 5)
    gate.set()
    assert await store.collect_garbage(now=float("inf")) == 1
    assert store.pending_bytes() == 0
    assert list(store.pending_dir.iterdir()) == []
    assert await store.free() == store.capacity


async def test_an_activated_share_has_its_block_roots_on_disk_too(
    store: ShareStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The roots file is what the node serves and proves from: it is fsynced before the share is
    indexed, as the share's bytes are (an ordinary upload fsyncs both; a pending one fsynced only the
    bytes, so a crash after activation could leave an indexed share with an empty roots file)."""
    synced: set[int] = set()
    real = os.fsync

    def fsync(fd: int) -> None:
        real(fd)
        synced.add(os.fstat(fd).st_ino)

    monkeypatch.setattr(pending.os, "fsync", fsync)
    data = os.urandom(3 * BLOCK + 7)
    up = await store.begin_pending(9, 3, size=len(data), leaf_size=LEAF, block_size=BLOCK, owner=OWNER)
    await up.write(data)
    held = await up.commit()
    await store.activate(9, 3, dataset=DS, root=held.root)
    assert os.stat(store.share_path(DS, 3)).st_ino in synced
    assert os.stat(store.roots_path(DS, 3)).st_ino in synced
