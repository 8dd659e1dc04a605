"""Two processes signing for one account (a running node proving, and `datasov node claim`) race for its
nonce: the one whose nonce was taken between its read and its send must read it again, not fail
(the demo's outside node failed `node claim` with "Invalid transaction nonce: Expected 7, but got 6")."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.tx import NONCE_ATTEMPTS

from .conftest import BUYER, STRANGER


async def test_a_nonce_taken_by_another_process_is_read_again(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    w3 = chain.w3
    await chain.send(chain.token.functions.transfer(STRANGER.address, TOKEN), BUYER)  # a nonce to take
    before = await chain.token.functions.balanceOf(STRANGER.address).call()
    real = w3.eth.get_transaction_count
    reads: list[int] = []

    async def read_before_the_other_process_sent(address: Any, block: Any = "latest") -> int:
        count = await real(address, block)
        reads.append(count)
        return count - 1 if len(reads) == 1 else count  # the first read predates the other's transaction

    chain.tx.forget_nonces()
    monkeypatch.setattr(w3.eth, "get_transaction_count", read_before_the_other_process_sent)
    await chain.send(chain.token.functions.transfer(STRANGER.address, TOKEN), BUYER)
    assert len(reads) == 2  # refused once for its stale nonce, then sent with the one read again
    assert await chain.token.functions.balanceOf(STRANGER.address).call() == before + TOKEN
    assert NONCE_ATTEMPTS >= 2
