"""The embedded development chain: an in-process EVM (eth-tester / py-evm) with deterministic,
funded dev accounts, and the controls of a local chain (mine, advance time, snapshot and revert) on
the embedded chain or a Hardhat node.

Imported only by the devnet, the demo, the benchmarks and the tests: an operator's node or an
owner's agent never loads the test EVM (import-linter forbids it from ``storage_node`` and ``market``).
"""

from __future__ import annotations

import ast
import hashlib
from typing import Any, cast

from eth.abc import ComputationAPI, SignedTransactionAPI, StateAPI
from eth.estimators.gas import binary_gas_search
from eth.vm.forks.cancun import CancunVM
from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider

from .chain import Chain
from .connection import ETHER, TOKEN, ChainConfig
from .logindex import LogIndex, LogIndexMiddleware
from .tx import accept_reverts_from

__all__ = ["DEV_FUNDS_ETH", "DEV_FUNDS_TOKEN", "DevChain", "TransactionFailed", "dev_account", "raw_revert"]

DEV_FUNDS_ETH = 1000 * ETHER
DEV_FUNDS_TOKEN = 1_000_000 * TOKEN


def raw_revert(err: BaseException | None) -> bytes | None:
    """Revert bytes carried by eth-tester's TransactionFailed, on the error or its causes: as
    bytes (estimate_gas) or as the repr of bytes in a string (eth_call)."""
    seen = 0
    while err is not None and seen < 5:
        for arg in err.args:
            if isinstance(arg, bytes):
                return arg
            if isinstance(arg, str):
                text = arg.removeprefix("execution reverted: ")
                if text.startswith(("b'", 'b"')):
                    try:
                        value = ast.literal_eval(text)
                    except (ValueError, SyntaxError):
                        continue
                    if isinstance(value, bytes):
                        return value
        err = err.__cause__ or err.__context__
        seen += 1
    return None


accept_reverts_from(TransactionFailed, raw_revert)  # eth-tester's refusals become named reverts


def _run(state: StateAPI, transaction: SignedTransactionAPI, gas: int) -> ComputationAPI:
    """Execute ``transaction`` with ``gas`` (gas price 0) and undo it: what it did, not kept."""
    snapshot = state.snapshot()
    try:
        return state.apply_transaction(cast(SignedTransactionAPI, SpoofTransaction(transaction, gas=gas, gas_price=0)))
    finally:
        state.revert(snapshot)


def estimate_gas(state: StateAPI, transaction: SignedTransactionAPI) -> int:
    """The embedded chain's gas estimator: run once with the block's gas limit, then once with what
    that used plus the 1/64 each call withholds from the callee (EIP-150), and take that; a binary
    search only if the second run fails. py-evm's default searches from the intrinsic gas to the
    block limit: ~11 runs of every estimated transaction, most of a devnet chain's CPU when 30 nodes
    prove each epoch. Refusals raise as before (the full run's error, with its revert bytes)."""
    full = _run(state, transaction, state.gas_limit)
    if full.is_error:
        raise full.error
    used = transaction.intrinsic_gas + full.get_gas_used()
    guess = min(state.gas_limit, used + used // 63 + 2_300)  # 2,300: SSTORE needs that much left (EIP-2200)
    if not _run(state, transaction, guess).is_error:
        return guess
    return int(binary_gas_search(state, transaction, tolerance=1_000))


def dev_account(i: int) -> LocalAccount:
    """Deterministic development account ``i`` (never use these keys for anything of value)."""
    key = hashlib.sha256(b"datasov-dev-account-%d" % i).digest()
    account: LocalAccount = Account.from_key(key)
    return account


class DevChain(Chain):
    """A :class:`~contracts.chain.Chain` on a local chain (``kind`` "embedded", or "rpc" for Hardhat)
    that tests and the devnet drive: mine blocks, move time, snapshot and revert, fund dev accounts."""

    @classmethod
    async def embedded(cls, *, dev_accounts: int = 12, config: ChainConfig = ChainConfig()) -> DevChain:
        """A fresh in-process EVM with contracts deployed and ``dev_accounts`` funded accounts
        (``dev_account(0)`` deployed the contracts; every account holds test tokens)."""
        provider = AsyncEthereumTesterProvider()
        # The same fork as the compiler target and the Hardhat node (contracts/hardhat.config.js),
        # so gas and opcodes match across the embedded chain, Hardhat and production.
        backend = PyEVMBackend(vm_configuration=((0, CancunVM),))
        type(backend.chain).gas_estimator = staticmethod(estimate_gas)  # the class too: a revert builds a new chain
        backend.chain.gas_estimator = estimate_gas
        provider.ethereum_tester = EthereumTester(backend=backend)
        provider.log_index = LogIndex()  # type: ignore[attr-defined]
        w3 = AsyncWeb3(provider)
        w3.middleware_onion.add(LogIndexMiddleware)
        tester = provider.ethereum_tester
        coinbase = tester.get_accounts()[0]
        w3.eth.default_account = coinbase  # what eth-tester's middleware would ask for on every call
        for i in range(dev_accounts):
            acct = dev_account(i)
            tester.add_account(acct.key.hex())
            tester.send_transaction(
                {"from": coinbase, "to": acct.address, "value": DEV_FUNDS_ETH, "gas": 21000, "gas_price": 10**9}
            )
        chain = await cls._deploy(w3, dev_account(0), config, kind="embedded")
        await chain.fund_dev_accounts(dev_accounts)
        return chain

    async def fund_dev_accounts(self, count: int, *, eth: int = DEV_FUNDS_ETH, tokens: int = DEV_FUNDS_TOKEN) -> None:
        """Give dev accounts ETH (Hardhat's ``hardhat_setBalance``) and test tokens (local chains only)."""
        for i in range(count):
            address = dev_account(i).address
            if self.kind == "rpc":
                await self._rpc("hardhat_setBalance", [address, hex(eth)])
            await self.mint(dev_account(0), address, tokens)

    # ------------------------------------------------------------------- local chains ----

    async def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks (embedded chain or Hardhat)."""
        if self.kind == "embedded":
            tester = self.w3.provider.ethereum_tester
            tester.mine_blocks(blocks)
        else:
            await self._rpc("hardhat_mine", [hex(blocks)])

    def head(self) -> int:
        """The embedded chain's latest block number, from its header (eth-tester's own answer
        builds and serializes the whole block; the header is the pending block's, one past it)."""
        return int(self.w3.provider.ethereum_tester.backend.chain.header.block_number) - 1

    async def advance_time(self, seconds: int) -> None:
        """Move the chain clock forward and mine a block at the new time."""
        if self.kind == "embedded":
            tester = self.w3.provider.ethereum_tester
            latest = await self.w3.eth.get_block("latest")
            target = int(latest["timestamp"]) + seconds
            tester.time_travel(target)
            if await self.timestamp() < target:  # eth-tester stamps the travelling block a second early
                tester.mine_blocks(1)
        else:
            await self._rpc("evm_increaseTime", [seconds])
            await self._rpc("evm_mine", [])

    async def snapshot(self) -> Any:
        """Remember the chain state (local chains only); see :meth:`revert`."""
        if self.kind == "embedded":
            return self.w3.provider.ethereum_tester.take_snapshot()
        return await self._rpc("evm_snapshot", [])

    async def revert(self, snapshot: Any) -> None:
        """Go back to a snapshot; the nonce cache is dropped with it."""
        if self.kind == "embedded":
            self.w3.provider.ethereum_tester.revert_to_snapshot(snapshot)
            self.w3.provider.log_index.forget_after(self.head())  # the blocks after the snapshot are gone
        else:
            await self._rpc("evm_revert", [snapshot])
        self.tx.forget_nonces()
        self.event_logs.clear()

    async def advance_to_epoch(self, epoch: int, *, offset: int = 1) -> None:
        """Mine until the chain is ``offset`` blocks into ``epoch`` (offset >= 1: the seed is readable)."""
        target = await self.epoch_start_block(epoch) + offset
        now = await self.block_number()
        if target > now:
            await self.mine(target - now)
