"""The upload receive path's batching (:class:`storage_node.store.uploads.Upload`): chunks of any
size, batches that end inside a block (the block completed by the next batch), one hashing call per
batch: the block roots kept and the share root are those of the whole share, a wrong declared root
is refused and leaves nothing, and a mutable buffer the caller reuses is not aliased."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from erasure import merkle
from storage_node.errors import ShareNotFound, UploadMismatch
from storage_node.store import uploads
from storage_node.store.shares import ShareStore

from .test_store import BLOCK, DS, LEAF


async def _upload(home: Path, data: bytes, chunks: list[int], *, right_root: bool) -> list[bytes] | None:
    """Upload ``data`` in pieces of the given sizes (cycled); the stored block roots, or None if refused."""
    store = ShareStore(home, capacity=1 << 20)
    try:
        root = merkle.root(data, LEAF) if right_root else bytes(32)
        up = await store.begin(DS, 0, root=root, size=len(data), leaf_size=LEAF, block_size=BLOCK)
        buffer = bytearray()
        at, n = 0, 0
        while at < len(data):
            step = chunks[n % len(chunks)]
            buffer[:] = data[at : at + step]  # the same buffer, refilled: the upload must not keep it
            await up.write(buffer)
            at, n = at + step, n + 1
        try:
            await up.commit()
        except UploadMismatch:
            with pytest.raises(ShareNotFound):
                await store.get(DS, 0)
            assert not list(store.tmp_dir.glob("*.part"))
            return None
        raw = store.roots_path(DS, 0).read_bytes()
        return [raw[i : i + 32] for i in range(0, len(raw), 32)]
    finally:
        store.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(size=5 * BLOCK + 333, chunks=[BLOCK + 1], right_root=True)
@example(size=3 * BLOCK, chunks=[100, 5000, 1], right_root=True)
@example(size=2 * BLOCK + 7, chunks=[3000], right_root=False)
@given(
    size=st.integers(1, 8 * BLOCK),
    chunks=st.lists(st.integers(1, 3 * BLOCK), min_size=1, max_size=4),
    right_root=st.booleans(),
)
def test_any_chunking_stores_the_share_roots(
    size: int, chunks: list[int], right_root: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "FLUSH", 3 * BLOCK // 2)  # batches end inside blocks
    data = os.urandom(size)
    with tempfile.TemporaryDirectory() as home:
        roots = asyncio.run(_upload(Path(home), data, chunks, right_root=right_root))
    if right_root:
        assert roots == merkle.block_roots(data, BLOCK, LEAF)
    else:
        assert roots is None
