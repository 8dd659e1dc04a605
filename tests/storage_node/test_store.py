"""The share store: atomic uploads, verified reads, proofs, quarantine, quota, recovery after kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from erasure import merkle
from storage_node.errors import (
    CorruptShare,
    QuotaExceeded,
    Replayed,
    SchemaError,
    ShareExists,
    ShareNotFound,
    UploadMismatch,
)
from storage_node.store.index import SCHEMA_VERSION, Index
from storage_node.store.shares import ShareStore

LEAF, BLOCK = 1024, 4096
DS = "ab" * 32


def share_bytes(size: int) -> bytes:
    return os.urandom(size)


async def put(
    store: ShareStore,
    data: bytes,
    *,
    idx: int = 0,
    root: bytes | None = None,
    chunk: int = 7000,
    expires_at: float = 0.0,
    dataset: str = DS,
) -> None:
    up = await store.begin(
        dataset,
        idx,
        root=root or merkle.root(data, LEAF),
        size=len(data),
        leaf_size=LEAF,
        block_size=BLOCK,
        expires_at=expires_at,
    )
    for i in range(0, len(data), chunk):
        await up.write(data[i : i + chunk])
    await up.commit()


@pytest.fixture
def store(tmp_path: Path) -> ShareStore:
    s = ShareStore(tmp_path / "node", capacity=10 << 20)
    yield s
    s.close()


@pytest.mark.parametrize("size", [1, LEAF - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 333, (1 << 20) + 17])
async def test_round_trip_ranges_and_proofs(store: ShareStore, size: int) -> None:
    data = share_bytes(size)
    await put(store, data)
    record = await store.get(DS, 0)
    assert (record.size, record.root) == (size, merkle.root(data, LEAF))
    assert await store.block_roots(record) == merkle.block_roots(data, BLOCK, LEAF)
    whole = b"".join([c async for c in store.read_range(record, 0, size)])
    assert whole == data
    for start, end in [(0, 1), (size // 3, size // 3 + 1), (max(0, size - 5000), size)]:
        if start < end:
            got = b"".join([c async for c in store.read_range(record, start, end)])
            assert got == data[start:end]
    tree = merkle.MerkleTree(data, LEAF)
    for leaf in {0, tree.leaf_count // 2, tree.leaf_count - 1}:
        leaf_bytes, proof = await store.prove(record, leaf)
        assert proof == tree.prove(leaf)
        assert merkle.verify_proof(record.root, leaf_bytes, proof)
    assert not list(store.tmp_dir.iterdir())


async def test_wrong_root_short_and_long_uploads_leave_nothing(store: ShareStore) -> None:
    data = share_bytes(3 * BLOCK)
    with pytest.raises(UploadMismatch, match="root"):
        await put(store, data, root=bytes(32))
    up = await store.begin(DS, 0, root=merkle.root(data, LEAF), size=len(data), leaf_size=LEAF, block_size=BLOCK)
    await up.write(data[:100])
    with pytest.raises(UploadMismatch, match="received 100"):
        await up.commit()
    up = await store.begin(DS, 0, root=merkle.root(data, LEAF), size=len(data), leaf_size=LEAF, block_size=BLOCK)
    with pytest.raises(UploadMismatch, match="more than"):
        await up.write(data + b"x")
    with pytest.raises(ShareNotFound):
        await store.get(DS, 0)
    assert not list(store.tmp_dir.iterdir())
    assert await store.free() == store.capacity  # every reservation was released
    await put(store, data)  # and the place is free for a correct upload


async def test_duplicates_and_quota(store: ShareStore) -> None:
    await put(store, share_bytes(BLOCK))
    with pytest.raises(ShareExists):
        await put(store, share_bytes(BLOCK))
    big = store.capacity // 2
    first = await store.begin(DS, 1, root=bytes(32), size=big, leaf_size=LEAF, block_size=BLOCK)
    with pytest.raises(QuotaExceeded):  # the first upload's reservation counts
        await store.begin(DS, 2, root=bytes(32), size=big, leaf_size=LEAF, block_size=BLOCK)
    with pytest.raises(ShareExists):  # the same place cannot be uploaded twice at once
        await store.begin(DS, 1, root=bytes(32), size=10, leaf_size=LEAF, block_size=BLOCK)
    await first.abort()
    second = await store.begin(DS, 2, root=bytes(32), size=big, leaf_size=LEAF, block_size=BLOCK)
    await second.abort()


async def test_concurrent_uploads_cannot_both_claim_a_place_or_space(store: ShareStore) -> None:
    kw = {"root": bytes(32), "leaf_size": LEAF, "block_size": BLOCK}
    same = await asyncio.gather(
        store.begin(DS, 5, size=10, **kw), store.begin(DS, 5, size=10, **kw), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in same) == ["ShareExists", "Upload"]
    big = store.capacity // 2 + 1
    space = await asyncio.gather(
        store.begin(DS, 6, size=big, **kw), store.begin(DS, 7, size=big, **kw), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in space) == ["QuotaExceeded", "Upload"]
    for r in (*same, *space):
        if not isinstance(r, BaseException):
            await r.abort()
    assert await store.free() == store.capacity


@pytest.mark.parametrize(("dataset", "idx"), [("../etc", 0), ("AB" * 32, 0), ("ab" * 31, 0), (DS, 256), (DS, -1)])
async def test_bad_addresses_never_touch_disk(store: ShareStore, dataset: str, idx: int) -> None:
    with pytest.raises(ShareNotFound):
        await store.begin(dataset, idx, root=bytes(32), size=1, leaf_size=LEAF, block_size=BLOCK)
    with pytest.raises(ShareNotFound):
        await store.get(dataset, idx)


async def test_corruption_on_disk_is_quarantined_never_served(store: ShareStore) -> None:
    data = share_bytes(4 * BLOCK)
    await put(store, data)
    record = await store.get(DS, 0)
    path = store.share_path(DS, 0)
    raw = bytearray(path.read_bytes())
    raw[2 * BLOCK + 10] ^= 0x01
    path.write_bytes(bytes(raw))
    # the first block is still good and served; the corrupted one is not
    assert b"".join([c async for c in store.read_range(record, 0, 100)]) == data[:100]
    with pytest.raises(CorruptShare):
        async for _ in store.read_range(record, 0, len(data)):
            pass
    with pytest.raises(ShareNotFound):
        await store.get(DS, 0)
    assert len(list(store.quarantine_dir.glob("*.share"))) == 1
    assert store.corruptions == 1


async def test_garbage_collection_and_delete(store: ShareStore) -> None:
    await put(store, share_bytes(BLOCK), idx=0, expires_at=1.0)
    await put(store, share_bytes(BLOCK), idx=1)
    assert await store.collect_garbage(now=2.0) == 1
    with pytest.raises(ShareNotFound):
        await store.get(DS, 0)
    await store.delete(DS, 1)
    assert await store.used() == 0
    assert not store.share_path(DS, 1).exists()


def test_index_schema_and_nonces(tmp_path: Path) -> None:
    index = Index(tmp_path / "i.sqlite")
    assert index.schema_version == SCHEMA_VERSION == 3
    index.use_nonce("0xAbC", "n1", expires_at=10)
    with pytest.raises(Replayed):
        index.use_nonce("0xabc", "n1", expires_at=10)
    assert index.forget_nonces(now=11) == 1
    index.db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    index.close()
    with pytest.raises(SchemaError):
        Index(tmp_path / "i.sqlite")


def _sqlite_utils_v1(path: Path) -> None:
    """An index as a node of schema v1 wrote it (with sqlite-utils), holding one share."""
    import sqlite3

    import sqlite_utils

    db = sqlite_utils.Database(sqlite3.connect(path))
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.table("shares").create(
        {
            "dataset": str,
            "idx": int,
            "root": str,
            "size": int,
            "leaf_size": int,
            "block_size": int,
            "deal_id": int,
            "state": str,
            "stored_at": float,
            "expires_at": float,
        },
        pk=("dataset", "idx"),
    )
    db.table("nonces").create({"signer": str, "nonce": str, "expires_at": float}, pk=("signer", "nonce"))
    db.table("nonces").create_index(["expires_at"])
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.table("shares").insert(
        {
            "dataset": DS,
            "idx": 0,
            "root": "00" * 32,
            "size": 1,
            "leaf_size": LEAF,
            "block_size": BLOCK,
            "deal_id": 0,
            "state": "ok",
            "stored_at": 1.0,
            "expires_at": 0.0,
        }
    )
    db.conn.commit()
    db.conn.close()


def test_migration_from_v1_keeps_shares(tmp_path: Path) -> None:
    _sqlite_utils_v1(tmp_path / "old.sqlite")
    index = Index(tmp_path / "old.sqlite")
    try:
        assert index.schema_version == 3
        record = index.get(DS, 0)
        assert record is not None
        assert record.owner == ""
        assert record.share_proof == ()
    finally:
        index.close()


def test_a_new_index_has_the_schema_of_a_migrated_sqlite_utils_one(tmp_path: Path) -> None:
    """The plain-SQL migrations make the tables sqlite-utils made (columns, types, keys, index)."""
    _sqlite_utils_v1(tmp_path / "old.sqlite")

    def schema(path: Path) -> dict[str, list[tuple[object, ...]]]:
        index = Index(path)
        pragma = {"table": "table_info", "index": "index_info"}
        try:
            master = index.db.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
            return {
                name: [tuple(c) for c in index.db.execute(f"PRAGMA {pragma[kind]}({name})")] for kind, name in master
            }
        finally:
            index.close()

    assert schema(tmp_path / "new.sqlite") == schema(tmp_path / "old.sqlite")


WRITER = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    from storage_node.store.shares import ShareStore

    async def main():
        store = ShareStore(Path(sys.argv[1]), capacity=1 << 30)
        up = await store.begin("ab" * 32, 0, root=bytes(32), size=64 << 20, leaf_size=1024, block_size=4096)
        await up.write(os.urandom(8 << 20))
        print("half", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


async def test_kill_9_mid_upload_leaves_nothing_visible(tmp_path: Path) -> None:
    home = tmp_path / "node"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, str(home), stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"half"
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert list((home / "tmp").glob("*.part"))  # the partial upload really was on disk
    store = ShareStore(home, capacity=1 << 30)
    try:
        report = store.recover()
        assert report["partial_uploads"] == 1
        assert not list((home / "tmp").iterdir())
        with pytest.raises(ShareNotFound):
            await store.get(DS, 0)
        assert await store.used() == 0
    finally:
        store.close()


async def test_recovery_drops_orphans_and_missing_files(store: ShareStore) -> None:
    await put(store, share_bytes(BLOCK), idx=0)
    await put(store, share_bytes(BLOCK), idx=1)
    orphan = store.share_path(DS, 7)
    orphan.write_bytes(b"renamed but never indexed")  # a crash between rename and index insert
    store.share_path(DS, 1).unlink()  # a file lost under the index
    report = store.recover()
    assert report == {"partial_uploads": 0, "orphans": 1, "missing": 1}
    await store.get(DS, 0)
    with pytest.raises(ShareNotFound):
        await store.get(DS, 1)
