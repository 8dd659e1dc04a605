"""A prover that is done with an epoch reads only the block number until the next epoch can have
begun, not the current epoch every second (each ``currentEpoch`` call ran the chain's EVM, for every
node, every second, publishing or not); it still proves the next epoch as soon as its seed is out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from storage_node.prover import Prover
from storage_node.store.shares import ShareStore

pytestmark = pytest.mark.asyncio(loop_scope="function")

EPOCH_BLOCKS = 10


class EpochsOnly:
    """The part of a chain a prover with no shares reads: blocks and epochs (a call runs one block on)."""

    def __init__(self) -> None:
        self.block = 0
        self.epoch_calls = 0

    async def block_number(self) -> int:
        return self.block

    async def current_epoch(self) -> int:
        self.epoch_calls += 1
        return (self.block + 1) // EPOCH_BLOCKS

    async def epoch_start_block(self, epoch: int) -> int:
        return epoch * EPOCH_BLOCKS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ShareStore]:
    s = ShareStore(tmp_path / "node", capacity=1 << 20)
    yield s
    s.close()


async def test_ticks_within_a_done_epoch_do_not_read_the_epoch(store: ShareStore) -> None:
    chain = EpochsOnly()
    prover = Prover(chain, Account.create(), store)  # type: ignore[arg-type]
    chain.block = 3
    done: list[Any] = []
    done.append(await prover.tick())  # epoch 0, its seed out: proven (nothing held)
    assert done[0] is not None
    assert done[0].epoch == 0
    assert chain.epoch_calls == 1
    for block in range(4, 9):  # the rest of epoch 0
        chain.block = block
        assert await prover.tick() is None
    assert chain.epoch_calls == 1
    chain.block = 9  # a call now runs in block 10, epoch 1's first: read, but its seed is not out
    assert await prover.tick() is None
    chain.block = 11
    report = await prover.tick()
    assert report is not None
    assert report.epoch == 1
