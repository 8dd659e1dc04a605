"""An idle prover (its epoch proven, or the next epoch's seed not yet readable) asks the chain only for
the head until a block is mined: the epoch reads are contract calls through the EVM, and 12 provers
polling every 0.2 s on the demo's in-process chain spent most of its event loop on them."""

from __future__ import annotations

from typing import Any

from storage_node.prover import Prover


class Chain:
    """The reads a prover's round makes, counted (a unit test: the proofs themselves are tested on chains)."""

    def __init__(self) -> None:
        self.head = 10
        self.reads: list[str] = []

    async def block_number(self) -> int:
        return self.head

    async def current_epoch(self) -> int:
        self.reads.append("current_epoch")
        return 1

    async def epoch_start_block(self, epoch: int) -> int:
        self.reads.append("epoch_start_block")
        return 12  # epoch 1's seed block is not mined yet while the head is below it


class Store:
    async def records(self) -> list[Any]:
        return []


async def test_an_idle_prover_reads_the_epoch_again_only_after_a_new_block() -> None:
    chain = Chain()
    prover = Prover(chain, account=None, store=Store())  # type: ignore[arg-type]
    assert await prover.tick() is None  # the seed of epoch 1 is not readable yet
    assert chain.reads == ["current_epoch", "epoch_start_block"]
    assert await prover.tick() is None
    assert chain.reads == ["current_epoch", "epoch_start_block"]  # same head: nothing can have changed
    chain.head = 11
    assert await prover.tick() is None
    assert chain.reads == ["current_epoch", "epoch_start_block"] * 2
