"""The fee fields of a transaction are read from the chain about once per block (the base fee),
once a minute (the suggested priority fee) and once per connection (the chain id), not for every
transaction (web3 read the chain id, the priority fee and the latest block each time: three of a
transaction's round trips; every node's ``acceptShare`` and the publisher's transactions paid them)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from contracts.chain import Chain
from contracts.connection import TOKEN

from .conftest import BUYER, STRANGER

FEE_METHODS = ("eth_chainId", "eth_maxPriorityFeePerGas", "eth_getBlockByNumber")


def count_requests(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    seen: Counter[str] = Counter()
    manager = chain.w3.manager
    real = manager.coro_request

    async def counted(method: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
        seen[str(method)] += 1
        return await real(method, params, *args, **kwargs)

    monkeypatch.setattr(manager, "coro_request", counted)
    return seen


async def test_transactions_sent_within_a_block_share_one_read_of_the_fees(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    await chain.send(chain.token.functions.transfer(STRANGER.address, TOKEN), BUYER)  # fees read once here
    before = await chain.token.functions.balanceOf(STRANGER.address).call()
    seen = count_requests(chain, monkeypatch)
    for _ in range(3):
        await chain.send(chain.token.functions.transfer(STRANGER.address, TOKEN), BUYER)
    assert await chain.token.functions.balanceOf(STRANGER.address).call() == before + 3 * TOKEN
    assert seen["eth_sendRawTransaction"] == 3
    assert all(seen[m] <= 1 for m in FEE_METHODS), seen


async def test_stale_fees_are_read_again(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    chain.tx.forget_fees()
    seen = count_requests(chain, monkeypatch)
    await chain.send(chain.token.functions.transfer(STRANGER.address, TOKEN), BUYER)
    assert seen["eth_maxPriorityFeePerGas"] == 1
    assert seen["eth_getBlockByNumber"] >= 1
    blocks = seen["eth_getBlockByNumber"]
    monkeypatch.setattr(chain.tx, "fee_ttl", 0.0)  # the base fee is stale at once
    await chain.send(chain.token.functions.transfer(STRANGER.address, TOKEN), BUYER)
    assert seen["eth_getBlockByNumber"] == blocks + 1
    assert seen["eth_maxPriorityFeePerGas"] == 1  # kept for a minute
    assert seen["eth_chainId"] <= 1  # once per connection
    monkeypatch.setattr(chain.tx, "priority_ttl", 0.0)
    await chain.send(chain.token.functions.transfer(STRANGER.address, TOKEN), BUYER)
    assert seen["eth_maxPriorityFeePerGas"] == 2
