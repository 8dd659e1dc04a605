"""The buyer's read-ahead share source, against a strict in-memory node (no network, no chain).

Property: whatever the dataset size, layout and read-ahead depth, a decode through
:class:`RemoteShareSource` returns the plaintext, every range asked for lies inside the share, and
no byte is fetched twice (windows are aligned on segments, so they never overlap).
"""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import decoding, envelope, pipeline
from erasure.pipeline import Layout
from market.latencies import Latencies
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


# ------------------------------------------------------ parallel and hedged reads ----


def _encoded(k: int, n: int, size: int) -> tuple[Any, bytes, bytes, list[bytes], list[list[bytes]]]:
    layout = Layout(k=k, n=n, block_size=1024, leaf_size=512, message_size=1500)
    plaintext = bytes(i % 241 for i in range(size))
    key = envelope.new_data_key()
    sinks = [_Sink() for _ in range(layout.n)]
    result = pipeline.encode([plaintext], sinks, key=key, layout=layout)
    return result.manifest, plaintext, key, [bytes(s.data) for s in sinks], result.block_roots


class GatedNode(StrictNode):
    """Answers a block only once k holders are asked for that same block at once (a decoder that
    waits on one holder before asking the next never gets an answer: the node refuses after 5 s)."""

    def __init__(self, shares: list[bytes], roots: list[list[bytes]], k: int) -> None:
        super().__init__(shares, roots)
        self.k = k
        self.asked: dict[int, set[int]] = {}
        self.gates: dict[int, asyncio.Event] = {}

    async def get_share(self, url: str, dataset: str, index: int, *, start: int = 0, end: int | None = None) -> bytes:
        self.asked.setdefault(start, set()).add(index)
        gate = self.gates.setdefault(start, asyncio.Event())
        if len(self.asked[start]) >= self.k:
            gate.set()
        try:
            await asyncio.wait_for(gate.wait(), 5.0)
        except TimeoutError:
            raise NodeError(f"only {len(self.asked[start])} holders asked for offset {start} at once") from None
        return await super().get_share(url, dataset, index, start=start, end=end)


@pytest.mark.parametrize("readahead", [1, 3])
def test_a_segments_k_blocks_are_asked_of_k_holders_at_once(loop: asyncio.AbstractEventLoop, readahead: int) -> None:
    man, plaintext, key, shares, roots = _encoded(3, 6, 9_000)
    node = GatedNode(shares, roots, k=3)
    client: Any = node
    sources = {
        i: RemoteShareSource.for_manifest(client, "http://node", man, i, loop, readahead=readahead) for i in range(6)
    }
    decoder = decoding.Decoder(man, key, sources, threads=1)
    assert b"".join(decoder) == plaintext
    assert not decoder.report.suspect_shares
    assert sorted(decoder.report.blocks_used) == [0, 1, 2]  # the k first in line, no spare needed


class LaggingNode(StrictNode):
    """Holder ``laggard`` answers nothing until ``release`` is set; the others answer at once."""

    def __init__(self, shares: list[bytes], roots: list[list[bytes]], laggard: int) -> None:
        super().__init__(shares, roots)
        self.laggard = laggard
        self.release = asyncio.Event()

    async def get_share(self, url: str, dataset: str, index: int, *, start: int = 0, end: int | None = None) -> bytes:
        if index == self.laggard:
            await self.release.wait()
        return await super().get_share(url, dataset, index, start=start, end=end)


async def _settle() -> None:
    """Let the loop finish the laggard's released and cancelled requests (turns of the loop, no wait)."""
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_lagging_holder_is_hedged_by_a_spare_without_waiting_for_it(loop: asyncio.AbstractEventLoop) -> None:
    """No first wait and no deadline: without a hedge the decoder would wait on holder 0 forever."""
    man, plaintext, key, shares, roots = _encoded(2, 4, 30_000)
    node = LaggingNode(shares, roots, laggard=0)
    client: Any = node
    latencies = Latencies(min_samples=4, floor=0.005, budget=10.0)
    for _ in range(4):  # this holder class answers blocks in 1 ms
        latencies.record(man.block_size, 0.001)
    sources = {
        i: RemoteShareSource.for_manifest(client, "http://node", man, i, loop, readahead=1, latencies=latencies)
        for i in range(4)
    }
    try:
        decoder = decoding.Decoder(man, key, sources, threads=2)
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(lambda: b"".join(decoder)).result(timeout=60) == plaintext
    finally:
        loop.call_soon_threadsafe(node.release.set)
        for source in sources.values():
            source.close()
        asyncio.run_coroutine_threadsafe(_settle(), loop).result(10)
    assert decoder.report.hedged.get(0, 0) >= 1
    assert 0 not in decoder.report.blocks_used
    assert 0 not in decoder.report.excluded
    assert decoder.report.timeouts.get(0, 0) == 0  # a hedge is not a "not yet" towards dropping it


def test_latencies_hedge_after_the_p95_of_their_size_once_enough_came_in() -> None:
    latencies = Latencies(window=20, min_samples=10, floor=0.001)
    for _ in range(9):
        latencies.record(100, 0.010)
    assert latencies.hedge_after(100) is None  # not on a guess
    for i in range(11):
        latencies.record(100, 0.010 if i < 10 else 0.500)
    assert latencies.hedge_after(100) == 0.500  # the p95 of the last 20: the slowest one here
    latencies.record(100, 0.010)
    assert latencies.hedge_after(100) == 0.500
    assert latencies.hedge_after(200) is None  # no larger class to go by
    assert latencies.hedge_after(50) == 0.500  # a smaller request goes by the next larger class
    slow = Latencies(min_samples=1, floor=0.05)
    slow.record(1, 0.001)
    assert slow.hedge_after(1) == 0.05


def test_hedges_stay_within_their_budget_per_answer() -> None:
    latencies = Latencies(budget=0.1)
    for _ in range(19):
        latencies.record(100, 0.01)
    assert latencies.take_hedge()  # 1 <= 0.1 * 19
    assert not latencies.take_hedge()  # 2 > 1.9: a slow-for-everyone spell does not double the load
    latencies.record(100, 0.01)
    assert latencies.take_hedge()  # 2 <= 0.1 * 20
