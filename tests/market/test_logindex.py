"""The embedded chain's log index answers eth_getLogs exactly as eth-tester would, across reverts."""

from __future__ import annotations

import pytest

from contracts.chain import Chain
from contracts.devchain import DevChain, dev_account
from contracts.terms import TRAINING_ALLOWED

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def register(chain: Chain, tag: int) -> int:
    return await chain.register_dataset(
        dev_account(1),
        manifest_hash=bytes([tag]) * 32,
        commitment_root=b"\2" * 32,
        key_commitment=b"\3" * 32,
        key_salt=b"\4" * 32,
        plaintext_size=10,
        share_size=10,
        leaf_size=1024,
        k=1,
        n=2,
        price=0,
        terms=TRAINING_ALLOWED,
    )


async def test_index_matches_eth_tester_and_forgets_reverted_blocks() -> None:
    chain = await DevChain.embedded(dev_accounts=3)
    event = chain.registry.events.DatasetRegistered()
    await register(chain, 1)
    snap = await chain.snapshot()
    await register(chain, 2)
    indexed = await event.get_logs(from_block=0)
    assert [bytes(e["args"]["manifestHash"])[0] for e in indexed] == [1, 2]
    assert chain.w3.provider.log_index._logs  # answered by the index, not by eth-tester's scan
    raw = chain.w3.provider.ethereum_tester.get_logs(from_block=0, address=chain.registry.address)
    every = await chain.w3.eth.get_logs({"fromBlock": 0, "address": chain.registry.address})
    assert [bytes(e["transactionHash"]) for e in every] == [bytes.fromhex(r["transaction_hash"][2:]) for r in raw]
    filtered = await event.get_logs(from_block=0, argument_filters={"datasetId": 2})
    assert [int(e["args"]["datasetId"]) for e in filtered] == [2]

    await chain.revert(snap)
    await register(chain, 3)  # same block numbers as the reverted ones, other content
    after = await event.get_logs(from_block=0)
    assert [bytes(e["args"]["manifestHash"])[0] for e in after] == [1, 3]
    assert await event.get_logs(from_block=await chain.block_number() + 1) == []
