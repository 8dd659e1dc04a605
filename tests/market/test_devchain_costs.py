"""What the embedded chain spends per request: a devnet's one chain process answers every node,
so each request's EVM runs decide whether 30 nodes' proofs fit in an epoch."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from eth.estimators.gas import binary_gas_search
from eth.vm.forks.frontier.state import FrontierState

from contracts import errors
from contracts.devchain import DevChain, dev_account
from datasov.rpc import serve

pytestmark = pytest.mark.asyncio(loop_scope="function")


class Runs:
    """Counts the transactions py-evm executes (calls, estimates and mined ones alike)."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    counter = Runs()
    original = FrontierState.apply_transaction

    def counting(self: Any, transaction: Any) -> Any:
        counter.count += 1
        return original(self, transaction)

    monkeypatch.setattr(FrontierState, "apply_transaction", counting)
    return counter


async def stake_call(chain: DevChain) -> Any:
    """``registerOperator``: a call into the token (``transferFrom``) inside the call, so the 1/64
    withheld from a callee counts."""
    owner = dev_account(1)
    stake = await chain.storage_market.functions.minStake().call()
    await chain.send(chain.token.functions.approve(chain.storage_market.address, stake), owner)
    return chain.storage_market.functions.registerOperator(stake)


async def test_a_gas_estimate_runs_the_transaction_twice_not_a_binary_search(runs: Runs) -> None:
    chain = await DevChain.embedded(dev_accounts=2)
    owner = dev_account(1)
    call = await stake_call(chain)
    runs.count = 0
    estimate = await call.estimate_gas({"from": owner.address})
    assert runs.count == 2  # py-evm's default search: 11 or 12

    backend = chain.w3.provider.ethereum_tester.backend
    ours, backend.chain.gas_estimator = backend.chain.gas_estimator, binary_gas_search(tolerance=1)
    searched = await call.estimate_gas({"from": owner.address})  # the least gas that succeeds
    backend.chain.gas_estimator = ours
    assert searched <= estimate <= searched * 1.05 + 2_300  # enough, and not much more than the least that is
    receipt = await chain.tx.send(call, owner, gas=estimate)  # exactly the estimate is enough
    assert receipt["status"] == 1


async def test_an_estimate_of_a_refused_call_still_names_the_revert(runs: Runs) -> None:
    chain = await DevChain.embedded(dev_accounts=2)
    runs.count = 0
    with pytest.raises(errors.ContractRevert):
        await chain.tx.send(chain.storage_market.functions.acceptShare(99, 0), dev_account(1))
    assert runs.count <= 2


async def test_the_served_chain_answers_the_block_number_and_keeps_old_logs_across_a_revert() -> None:
    """``devnet up``'s JSON-RPC: ``eth_blockNumber`` without building the block; ``evm_revert``
    forgets only the log index's blocks after the snapshot (it used to drop the whole index, and the
    next ``eth_getLogs`` walked every block since deployment through eth-tester)."""
    chain = await DevChain.embedded(dev_accounts=2)
    runner, url = await serve(chain, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:

            async def rpc(method: str, *params: Any) -> Any:
                request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
                async with http.post(url, json=request) as r:
                    return (await r.json())["result"]

            await chain.mint(dev_account(0), dev_account(1).address, 5)  # a Transfer log before the snapshot
            assert int(await rpc("eth_blockNumber"), 16) == await chain.block_number()
            await rpc("eth_getLogs", {"fromBlock": "0x0"})  # index every block so far
            before_snapshot = len(chain.w3.provider.log_index._logs)  # type: ignore[attr-defined]
            snap = await rpc("evm_snapshot")
            await rpc("hardhat_mine", "0x3")
            await rpc("eth_getLogs", {"fromBlock": "0x0"})
            assert int(await rpc("eth_blockNumber"), 16) == await chain.block_number()
            index = chain.w3.provider.log_index  # type: ignore[attr-defined]
            before = list(index._logs)
            assert before
            assert await rpc("evm_revert", snap) is True
            assert int(await rpc("eth_blockNumber"), 16) == await chain.block_number()
            assert index._logs == before[: len(index._logs)]  # what was indexed before the snapshot is kept
            assert len(index._logs) >= before_snapshot
    finally:
        await runner.cleanup()
