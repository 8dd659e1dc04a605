"""The devnet's block production (contracts.slots): one block per slot, so an epoch counted in
blocks cannot be used up by transactions. With a block per transaction, 30 nodes' proofs were
30 blocks: the epoch ended before the last of them and honest nodes were marked faulty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from contracts.connection import ChainConfig
from contracts.devchain import DevChain, dev_account
from contracts.slots import SlotMiner

pytestmark = pytest.mark.asyncio(loop_scope="function")
SENDERS = 30


@pytest_asyncio.fixture(loop_scope="function")
async def mined() -> AsyncIterator[tuple[DevChain, SlotMiner]]:
    chain = await DevChain.embedded(dev_accounts=SENDERS + 1, config=ChainConfig(epoch_blocks=4))
    miner = SlotMiner(chain, 0.2)
    task = asyncio.create_task(miner.run())
    yield chain, miner
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_thirty_transactions_sent_at_once_fit_in_one_epoch(mined: tuple[DevChain, SlotMiner]) -> None:
    chain, _ = mined
    recipient = dev_account(0).address
    receipts = await asyncio.gather(
        *(chain.send(chain.token.functions.transfer(recipient, 1), dev_account(i)) for i in range(1, SENDERS + 1))
    )
    assert all(r["status"] == 1 for r in receipts)
    blocks = sorted({int(r["blockNumber"]) for r in receipts})
    assert len(blocks) <= 3  # the first at once, the others together in the next slot (or the one after)
    genesis = await chain.epoch_start_block(0)
    epochs = {(b - genesis) // 4 for b in blocks}
    assert len(epochs) <= 2  # a block per transaction: 30 blocks, eight epochs of 4


async def test_a_lone_transaction_and_an_idle_chain_still_get_blocks(mined: tuple[DevChain, SlotMiner]) -> None:
    chain, miner = mined
    receipt = await chain.send(chain.token.functions.transfer(dev_account(0).address, 1), dev_account(1))
    assert receipt["status"] == 1
    head = await chain.block_number()
    await miner.next_block()  # empty blocks while nothing is sent
    await miner.next_block()
    assert await chain.block_number() == head + 2


async def test_a_refused_transaction_is_still_refused_at_once(mined: tuple[DevChain, SlotMiner]) -> None:
    from contracts import errors

    chain, _ = mined
    with pytest.raises(errors.ContractRevert):
        await chain.send(chain.storage_market.functions.acceptShare(99, 0), dev_account(1))


async def test_a_miner_cancelled_as_a_transaction_arrives_stops() -> None:
    """``devnet up`` stops its miner by cancelling it; a cancellation that met a transaction's
    wake-up was swallowed (asyncio.wait_for in Python 3.11) and the devnet ran on until SIGKILL."""
    chain = await DevChain.embedded(dev_accounts=1)
    miner = SlotMiner(chain, 30.0)  # a long slot: the miner waits inside it
    task = asyncio.create_task(miner.run())
    for _ in range(5):
        await asyncio.sleep(0)  # into the slot's wait
    miner._arrived.set()  # what a transaction's arrival does
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)  # a hang guard, not a timing: it stops at once or never
