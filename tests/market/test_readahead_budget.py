"""One fetch's read-ahead windows, bounded together (:mod:`market.readahead_budget`): sources that
are asked and then never read (spare holders, lost hedges) no longer keep their windows each."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from erasure import decoding
from market.latencies import Latencies
from market.readahead_budget import READAHEAD_BUDGET, ReadaheadBudget, budget_for
from market.remote_source import RemoteShareSource

from .test_remote_source import StrictNode, _encoded

BLOCK = 4096
BLOCKS = 400  # a share of 400 blocks, read ahead 8 blocks (32 KiB) at a time


def _prefetch_all(sources: dict[int, RemoteShareSource]) -> None:
    """Every block of every source asked for and never read, as a spare holder or a lost hedge is."""
    for block in range(BLOCKS):
        for source in sources.values():
            source.prefetch(block, block * BLOCK, BLOCK)


def _sources(
    loop: asyncio.AbstractEventLoop, budget: ReadaheadBudget | None, holders: int
) -> dict[int, RemoteShareSource]:
    share = bytes(range(256)) * (BLOCK * BLOCKS // 256)
    client: Any = StrictNode([share] * holders, [[] for _ in range(holders)])
    return {
        i: RemoteShareSource(
            client, "http://node", "ds", i, loop, share_size=len(share), block_size=BLOCK, readahead=8, budget=budget
        )
        for i in range(holders)
    }


def test_windows_of_sources_never_read_stay_within_the_fetchs_budget(loop: asyncio.AbstractEventLoop) -> None:
    """30 holders, each with 400 blocks asked for and none read: without a shared budget each source
    kept ~5 windows (KEEP_BEHIND segments), 30 x 160 KiB here (30 x 10 MiB at 256 KiB blocks)."""
    budget = ReadaheadBudget(limit=256 << 10)
    sources = _sources(loop, budget, 30)
    try:
        _prefetch_all(sources)
        held = sum(s.held for s in sources.values())
        assert held <= budget.limit
        assert budget.bytes == held  # the budget's count is what the sources hold
        assert budget.peak <= budget.limit
        assert budget.evicted > 0
    finally:
        for source in sources.values():
            source.close()
    assert budget.bytes == 0  # closed sources hold nothing


def test_a_block_of_an_evicted_window_is_asked_again_and_right(loop: asyncio.AbstractEventLoop) -> None:
    budget = ReadaheadBudget(limit=64 << 10)  # two windows of 32 KiB
    sources = _sources(loop, budget, 3)
    try:
        sources[0].prefetch(0, 0, BLOCK)
        for block in range(0, 3 * 8, 8):  # the other two holders push source 0's window out
            sources[1].prefetch(block, block * BLOCK, BLOCK)
            sources[2].prefetch(block, block * BLOCK, BLOCK)
        assert sources[0].held == 0
        share = bytes(range(256)) * (BLOCK * BLOCKS // 256)
        assert sources[0].read_block(3, 3 * BLOCK, BLOCK) == share[3 * BLOCK : 4 * BLOCK]
    finally:
        for source in sources.values():
            source.close()


def test_a_decode_through_a_budget_smaller_than_its_windows_returns_the_plaintext(
    loop: asyncio.AbstractEventLoop,
) -> None:
    man, plaintext, key, shares, roots = _encoded(3, 6, 30_000)
    client: Any = StrictNode(shares, roots)
    budget = ReadaheadBudget(limit=2 * 4 * man.block_size)  # less than one window per holder read
    sources = {
        i: RemoteShareSource.for_manifest(client, "http://node", man, i, loop, readahead=4, budget=budget)
        for i in range(6)
    }
    try:
        assert b"".join(decoding.Decoder(man, key, sources, threads=2)) == plaintext
    finally:
        for source in sources.values():
            source.close()
    assert budget.bytes == 0


def test_the_sources_of_one_fetch_share_one_budget_of_the_default_size(loop: asyncio.AbstractEventLoop) -> None:
    man, _, _, shares, roots = _encoded(2, 4, 5_000)
    client: Any = StrictNode(shares, roots)

    async def start() -> dict[int, RemoteShareSource]:
        return RemoteShareSource.started(client, {i: "http://node" for i in range(4)}, man, [0, 1, 2, 3])

    sources = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        budgets = {id(s.budget) for s in sources.values()}
        assert len(budgets) == 1
        assert next(iter(sources.values())).budget.limit == READAHEAD_BUDGET  # type: ignore[union-attr]
    finally:
        for source in sources.values():
            source.close()


def test_the_budget_covers_what_the_k_sources_read_need_whatever_k() -> None:
    window = 8 * (256 << 10)  # 8 blocks of 256 KiB
    assert budget_for(3, window) == READAHEAD_BUDGET
    assert budget_for(10, window) == 80 << 20  # 4 windows for each of the 10 read
    assert budget_for(20, window) == 160 << 20


class GatedNode(StrictNode):
    """Answers nothing until ``open`` is set (so that a request is still running when it is looked at)."""

    def __init__(self, shares: list[bytes]) -> None:
        super().__init__(shares, [[] for _ in shares])
        self.open = asyncio.Event()

    async def get_share(self, url: str, dataset: str, index: int, *, start: int = 0, end: int | None = None) -> bytes:
        await self.open.wait()
        return await super().get_share(url, dataset, index, start=start, end=end)


def test_a_window_read_whole_is_freed_at_once_not_left_to_the_cycle_collector(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """A hedged fetch's windows (a :class:`Latencies` records each answer) were each kept alive by a
    reference cycle (the request's future -> its done callback -> the request) until the cycle
    collector ran, which big ``bytes`` do not make it do: a 1 GiB 10-of-30 decode peaked at 524 MiB."""
    share = bytes(range(256)) * (BLOCK * 16 // 256)
    node = GatedNode([share])
    client: Any = node
    source = RemoteShareSource(
        client,
        "http://node",
        "ds",
        0,
        loop,
        share_size=len(share),
        block_size=BLOCK,
        readahead=8,
        latencies=Latencies(),
        budget=ReadaheadBudget(),
    )
    gc.collect()
    gc.disable()
    try:
        source.prefetch(0, 0, BLOCK)
        request = weakref.ref(source._pending[0].future)
        loop.call_soon_threadsafe(node.open.set)  # the answer comes after the latency callback is in place
        for block in range(8):
            assert source.read_block(block, block * BLOCK, BLOCK) == share[block * BLOCK : (block + 1) * BLOCK]
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)  # the loop's side let go too
        assert source.held == 0
        assert request() is None
    finally:
        gc.enable()
        source.close()
