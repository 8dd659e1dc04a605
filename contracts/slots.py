"""Block production for the devnet's embedded chain: one block per slot, as on a real chain.

eth-tester mines every transaction into a block of its own. Epochs are counted in blocks
(``StorageMarket.currentEpoch``), so on such a chain an epoch of 30 blocks ends after about 30
transactions: with 30 nodes each sending its storage proof, the epoch was over before the last
proofs arrived and honest nodes missed them (on a 30-node devnet, 10-25 of 30 shares went
unproven each epoch).

:class:`SlotMiner` cuts time into slots of ``slot`` seconds and mines one block per slot: at once
when the slot's first transaction arrives (a lone transaction waits for nothing), otherwise at the
slot's end, empty. Transactions that arrive after their slot's block wait for the next slot and
share its block. An epoch of N blocks therefore lasts at least N slots, however busy the chain is;
a chain process that falls behind only makes slots longer.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .devchain import DevChain

__all__ = ["SlotMiner"]


class SlotMiner:
    """``await SlotMiner(chain, slot).run()`` until cancelled; ``blocks`` counts what it mined."""

    def __init__(self, chain: DevChain, slot: float) -> None:
        if chain.kind != "embedded":
            raise ValueError("slots are for the embedded chain (Hardhat mines by its own rules)")
        if slot <= 0:
            raise ValueError("a slot lasts more than 0 seconds")
        self.chain = chain
        self.slot = slot
        self.blocks = 0
        self._arrived = asyncio.Event()
        self._mined = asyncio.Condition()

    async def next_block(self) -> None:
        """Wait until the miner has mined its next block."""
        async with self._mined:
            await self._mined.wait()

    def _defer(self, tester: Any) -> None:
        """eth-tester applies each transaction to the pending block and then mines that block
        (``mine_block``): the miner takes the second half, so a transaction is still executed once
        on arrival (refusals and receipts as before) and mined with the others of its slot.
        (eth-tester's own ``disable_auto_mine_transactions`` executes each transaction, reverts it
        and re-imports the latest block, then executes it again when mined.)"""

        def mine_block(coinbase: Any = None) -> None:
            self._arrived.set()

        tester.mine_block = mine_block

    async def run(self) -> None:
        tester = self.chain.w3.provider.ethereum_tester
        self._defer(tester)
        loop = asyncio.get_running_loop()
        try:
            while True:
                ends = loop.time() + self.slot
                # the slot's block: at its first transaction, or at its end (asyncio.timeout, not
                # wait_for: Python 3.11's wait_for loses a cancellation that meets a set event)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.slot):
                        await self._arrived.wait()
                self._arrived.clear()
                await self.chain.mine(1)
                self.blocks += 1
                async with self._mined:
                    self._mined.notify_all()
                await self.chain.index_logs()  # while the block is recent: cheap (see contracts.logindex)
                rest = ends - loop.time()
                if rest > 0:
                    await asyncio.sleep(rest)  # later transactions wait for the next slot's block
        finally:
            del tester.mine_block  # eth-tester's own again: each transaction mined on arrival
            await self.chain.mine(1)  # what was sent in the last slot
