"""``LicenseCalls.blocks_at``: the blocks mined at a time stamp, found in a few rounds of
concurrent block reads (a delivery's and a purchase's log queries are narrowed with it), the
same answer as a plain scan of the block times."""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts.licenses import LicenseCalls


class Blocks:
    """Block times of a chain (block i mined at ``times[i]``), counting reads and rounds."""

    def __init__(self, times: list[int], deployed: int) -> None:
        self.times = times
        self.deployment = SimpleNamespace(deployed_block=deployed)
        self.reads = 0
        self.in_flight = 0
        self.rounds = 0

    async def block_number(self) -> int:
        return len(self.times) - 1

    async def get_block(self, block: int) -> dict[str, Any]:
        self.reads += 1
        if self.in_flight == 0:
            self.rounds += 1
        self.in_flight += 1
        await asyncio.sleep(0)
        self.in_flight -= 1
        return {"number": block, "timestamp": self.times[block]}


@given(
    gaps=st.lists(st.integers(0, 3), min_size=1, max_size=300),
    deployed=st.integers(0, 5),
    pick=st.integers(-2, 400),
)
def test_the_blocks_at_a_time_are_those_a_scan_finds(gaps: list[int], deployed: int, pick: int) -> None:
    times = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    deployed = min(deployed, len(times) - 1)
    chain = Blocks(times, deployed)
    at = pick if pick < 0 or pick > times[-1] else times[min(pick, len(times) - 1)]
    first, last = asyncio.run(LicenseCalls.blocks_at(chain, at))  # type: ignore[arg-type]
    mined = [i for i in range(deployed, len(times)) if times[i] == at]
    if mined:
        assert (first, last) == (mined[0], mined[-1])
    else:  # none: an empty range where it would have been
        assert first == last + 1
    span = len(times) - deployed
    assert chain.rounds <= 2 * math.ceil(math.log(span + 1, 9)) + 2  # not log2(span) reads one by one


def test_a_long_chain_takes_a_few_rounds() -> None:
    times = [i // 2 for i in range(20_000)]  # two blocks a second
    chain = Blocks(times, 0)
    assert asyncio.run(LicenseCalls.blocks_at(chain, 4321)) == (8642, 8643)  # type: ignore[arg-type]
    assert chain.rounds <= 6  # bisection read 2 x 15 blocks, one after another
