"""The verify-ahead of sendfile downloads (:meth:`VerifiedReads.verified_spans`): with several
batches checked at once, the spans still cover exactly the asked range, in order, and stop right
before the first bad block (which quarantines the share); nothing after it is ever yielded."""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage_node.errors import CorruptShare
from storage_node.store import reads
from storage_node.store.shares import ShareStore

from .test_store import BLOCK, DS, put


async def _spans(home: Path, data: bytes, bad: int | None, start: int, end: int) -> tuple[list[tuple[int, int]], bool]:
    store = ShareStore(home, capacity=1 << 20)
    try:
        await put(store, data)
        record = await store.get(DS, 0)
        path = store.share_path(DS, 0)
        if bad is not None:
            with path.open("r+b") as f:
                f.seek(bad * BLOCK + 7 if bad * BLOCK + 7 < len(data) else bad * BLOCK)
                byte = f.read(1)
                f.seek(-1, os.SEEK_CUR)
                f.write(bytes([byte[0] ^ 0x01]))
        got: list[tuple[int, int]] = []
        corrupt = False
        with path.open("rb") as f:
            spans = store.verified_spans(record, f.fileno(), start, end)
            try:
                async for span in spans:
                    got.append(span)
            except CorruptShare:
                corrupt = True
            finally:
                await spans.aclose()
        return got, corrupt
    finally:
        store.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    blocks=st.integers(1, 12),
    tail=st.integers(0, BLOCK - 1),
    bad=st.none() | st.integers(0, 12),
    cut=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
@example(blocks=9, tail=100, bad=5, cut=(0.0, 1.0))  # the whole share, the bad block batches ahead
@example(blocks=4, tail=0, bad=0, cut=(0.1, 0.9))  # a bad first block: nothing yielded
@example(blocks=6, tail=33, bad=6, cut=(0.5, 1.0))  # the short last block bad
def test_spans_cover_the_range_and_stop_before_the_first_bad_block(
    blocks: int, tail: int, bad: int | None, cut: tuple[float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads, "READ_BATCH", 2 * BLOCK)  # two blocks per batch: many batches in the window
    data = os.urandom(blocks * BLOCK + tail)
    count = -(-len(data) // BLOCK)
    if bad is not None and bad >= count:
        bad = None
    a, b = sorted(int(c * len(data)) for c in cut)
    start, end = min(a, len(data) - 1), max(b, min(a, len(data) - 1) + 1)
    with tempfile.TemporaryDirectory() as home:
        got, corrupt = asyncio.run(_spans(Path(home), data, bad, start, end))
    first, last = start // BLOCK, (end - 1) // BLOCK
    hit = bad is not None and first <= bad <= last
    assert corrupt == hit
    upto = max(start, bad * BLOCK) if hit and bad is not None else end
    covered = [(o, o + n) for o, n in got]
    assert all(n > 0 for _, n in got)
    assert covered == sorted(covered)
    assert all(x[1] == y[0] for x, y in itertools.pairwise(covered))  # no gap, no overlap
    if covered:
        assert covered[0][0] == start
        assert covered[-1][1] == upto
    else:
        assert upto == start  # the first block is bad: nothing at all
