"""The buyer's read-ahead share source, against a strict in-memory node (no network, no chain).

Property: whatever the dataset size, layout and read-ahead depth, a decode through
:class:`RemoteShareSource` returns the plaintext, every range asked for lies inside the share, and
no byte is fetched twice (windows are aligned on segments, so they never overlap).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import decoding, envelope, pipeline
from erasure.pipeline import Layout
from market.remote_source import RemoteShareSource
from storage_node.errors import NodeError


class StrictNode:
    """Serves shares like a node does: a range past the end of a share is refused (416)."""

    def __init__(self, shares: list[bytes], roots: list[list[bytes]]) -> None:
        self.shares = shares
        self._roots = roots
        self.ranges: list[tuple[int, int, int]] = []

    async def get_share(self, url: str, dataset: str, index: int, *, start: int = 0, end: int | None = None) -> bytes:
        data = self.shares[index]
        stop = len(data) if end is None else end
        if not 0 <= start < stop <= len(data):
            raise NodeError(f"416: range {start}-{stop} outside share of {len(data)} bytes")
        self.ranges.append((index, start, stop))
        return data[start:stop]

    async def roots(self, url: str, dataset: str, index: int) -> list[bytes]:
        return self._roots[index]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


class _Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes, /) -> object:
        self.data += data
        return None


@settings(max_examples=40)
@given(
    size=st.integers(0, 40_000),
    k=st.integers(1, 4),
    leaves_per_block=st.sampled_from([1, 2, 4]),
    message_size=st.integers(700, 9000),
    readahead=st.integers(1, 9),
    threads=st.sampled_from([1, 3]),
)
def test_readahead_decodes_every_size_without_overlapping_ranges(
    loop: asyncio.AbstractEventLoop,
    size: int,
    k: int,
    leaves_per_block: int,
    message_size: int,
    readahead: int,
    threads: int,
) -> None:
    layout = Layout(k=k, n=k + 2, block_size=512 * leaves_per_block, leaf_size=512, message_size=message_size)
    plaintext = bytes(i % 251 for i in range(size))
    key = envelope.new_data_key()
    sinks = [_Sink() for _ in range(layout.n)]
    result = pipeline.encode([plaintext], sinks, key=key, layout=layout)
    man = result.manifest
    node = StrictNode([bytes(s.data) for s in sinks], result.block_roots)
    client: Any = node
    sources = {
        i: RemoteShareSource.for_manifest(client, "http://node", man, i, loop, readahead=readahead)
        for i in range(layout.n)
    }
    decoder = decoding.Decoder(man, key, sources, threads=threads)
    assert b"".join(decoder) == plaintext
    assert not decoder.report.suspect_shares
    for index in range(layout.n):
        spans = sorted((start, stop) for i, start, stop in node.ranges if i == index)
        assert all(a_stop <= b_start for (_, a_stop), (b_start, _) in itertools.pairwise(spans))
