"""The embedded chain's log index answers eth_getLogs exactly as eth-tester would, across reverts;
the chain client's kept event logs (contracts.logindex.EventLogs) read each block range once."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import delivery
from contracts.chain import Chain
from contracts.devchain import DevChain, dev_account
from contracts.terms import TRAINING_ALLOWED

pytestmark = pytest.mark.asyncio(loop_scope="function")
RELEASE_KEY = delivery.public_key(delivery.new_secret())


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


class Queries:
    """The ``eth_getLogs`` ranges the chain answers (spied on the embedded chain's index)."""

    def __init__(self, chain: DevChain) -> None:
        index = chain.w3.provider.log_index  # type: ignore[attr-defined]
        self.ranges: list[tuple[int, int]] = []
        query = index.query

        def spy(params: dict[str, Any]) -> list[dict[str, Any]]:
            self.ranges.append((index._block(params.get("fromBlock")), index._block(params.get("toBlock"))))
            return query(params)  # type: ignore[no-any-return]

        index.query = spy


async def test_a_second_pool_lookup_reads_only_the_blocks_mined_since_the_first() -> None:
    chain = await DevChain.embedded(dev_accounts=3)
    pool = await chain.create_pool(
        dev_account(2), terms=TRAINING_ALLOWED, price=5, curator_fee_bps=0, rules="", agent_key=RELEASE_KEY
    )
    queries = Queries(chain)
    assert await chain.pool_contributions(pool) == []
    first = await chain.block_number()
    assert queries.ranges == [(chain.deployment.deployed_block, first)]
    await chain.mine(3)
    assert await chain.pool_contributions(pool) == []
    assert queries.ranges[1:] == [(first + 1, first + 3)]  # not the deployment block again
    assert await chain.pool_contributions(pool) == []
    assert len(queries.ranges) == 2  # same head: nothing read


async def test_kept_event_logs_grow_with_new_blocks_filter_by_arguments_and_forget_a_revert() -> None:
    chain = await DevChain.embedded(dev_accounts=3)
    first = await register(chain, 1)

    async def registered(**match: Any) -> list[int]:
        logs = await chain.event_logs.get(chain.registry, "DatasetRegistered", await chain.block_number(), **match)
        return [bytes(log["args"]["manifestHash"])[0] for log in logs]

    assert await registered() == [1]
    snap = await chain.snapshot()
    second = await register(chain, 2)
    assert await registered() == [1, 2]  # the new block's log is read and kept with the old
    assert await registered(datasetId=second) == [2]
    assert await registered(datasetId=first) == [1]
    reads = [r for r in chain.event_logs.reads if r[0] == "DatasetRegistered"]
    assert reads[1][1] == reads[0][2] + 1  # the second read began where the first ended

    await chain.revert(snap)
    await register(chain, 3)  # the reverted block numbers again, other content
    assert await registered() == [1, 3]


def log_reads(chain: DevChain) -> list[int]:
    """The first block of each log read eth-tester answers from now on (spied on the tester)."""
    tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    asked: list[int] = []
    get_logs = tester.get_logs

    def counted(**kw: Any) -> Any:
        asked.append(kw.get("from_block", -1))
        return get_logs(**kw)

    tester.get_logs = counted
    return asked


async def test_empty_blocks_are_indexed_without_reading_their_logs() -> None:
    """Epochs advanced by mining thousands of empty blocks: the index skips a block whose header
    bloom is empty (eth-tester's per-block log read took ~10 ms each: minutes of event loop)."""
    chain = await DevChain.embedded(dev_accounts=3)
    event = chain.registry.events.DatasetRegistered()
    await register(chain, 1)
    assert len(await event.get_logs(from_block=0)) == 1
    asked = log_reads(chain)
    await chain.mine(500)
    await register(chain, 2)
    found = await event.get_logs(from_block=0)
    assert [bytes(e["args"]["manifestHash"])[0] for e in found] == [1, 2]
    assert len(asked) == 1  # the block with the registration; none of the 500 empty ones


async def test_a_revert_forgets_only_the_blocks_after_the_snapshot() -> None:
    """A test that reverts a long-lived chain (the e2e session's, hundreds of blocks with logs) made the
    next eth_getLogs re-read every block since deployment, each through eth-tester's scan from the head:
    test_reader's v2 fetch took 42 s in CI after test_why_a_license_cannot_read's revert, 9 s alone."""
    chain = await DevChain.embedded(dev_accounts=3)
    event = chain.registry.events.DatasetRegistered()
    for tag in (1, 2, 3):
        await register(chain, tag)
    snap = await chain.snapshot()
    await register(chain, 4)
    assert len(await event.get_logs(from_block=0)) == 4
    asked = log_reads(chain)
    await chain.revert(snap)
    await register(chain, 5)  # the reverted block's number again, other content
    found = await event.get_logs(from_block=0)
    assert [bytes(e["args"]["manifestHash"])[0] for e in found] == [1, 2, 3, 5]
    assert len(asked) == 1  # the new block; not the three kept from before the snapshot
