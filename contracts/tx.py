"""Sending transactions and decoding reverts: the part of the chain client below the contracts.

Transactions are signed locally (keys never leave the process) under a per-sender lock that
keeps nonces in order, gas is estimated first so a refusal is caught before anything is sent,
receipts are awaited with a timeout, and every revert becomes the named Python class of its
Solidity custom error (:mod:`contracts.errors`) with its decoded arguments.

The fee fields are filled here, not by web3 (which reads the chain id, the priority fee and the
latest block for every transaction): the chain id once per connection, the node's suggested
priority fee once per ``priority_ttl`` (60 s), the base fee at most once per ``fee_ttl`` seconds
(about a block), shared by every transaction sent meanwhile; ``maxFeePerGas`` is ``2 x base fee +
priority fee``, web3's own rule, which stays above the base fee through six full blocks in a row.
A send the node refuses for its fee re-reads them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.exceptions import ValidationError as EthValidationError
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception, Web3RPCError
from web3.logs import DISCARD
from web3.types import TxReceipt

import contracts

from . import errors, rpc
from .reverts import decode_revert

__all__ = ["Transactor", "accept_reverts_from", "decode_revert"]


RawRevert = Callable[[BaseException], bytes | None]

# Exceptions a backend raises for a refused call or estimate, with a reader of their revert bytes.
# web3's ContractLogicError carries them in ``.data``; a backend that raises its own type (the
# embedded eth-tester chain, :mod:`contracts.devchain`) registers it with :func:`accept_reverts_from`.
_REFUSALS: tuple[type[Exception], ...] = (ContractLogicError,)


def encodable(fn: Any) -> bool:
    """Whether :meth:`Transactor.call` encodes ``fn`` itself: a bound contract function with positional
    arguments only (anything else goes through web3's ``fn.call()``)."""
    abi = getattr(fn, "abi", None)
    return not fn.kwargs and isinstance(abi, dict) and abi.get("type") == "function" and bool(fn.address)


_RAW_READERS: dict[type[Exception], RawRevert] = {}


def accept_reverts_from(kind: type[Exception], raw: RawRevert) -> None:
    """Treat ``kind`` as a contract refusal; ``raw(err)`` reads its revert bytes (None if it has none)."""
    global _REFUSALS
    if kind not in _REFUSALS:
        _REFUSALS = (*_REFUSALS, kind)
    _RAW_READERS[kind] = raw


def _revert_from(err: Exception, function: str) -> errors.ContractRevert:
    reader = next((r for kind, r in _RAW_READERS.items() if isinstance(err, kind)), None)
    raw = reader(err) if reader is not None else None
    if raw is not None:
        return decode_revert(raw, function)
    data = getattr(err, "data", None)
    if isinstance(data, dict):
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x"):
        return decode_revert(data, function)
    return errors.UnknownRevert(f"{err}{' in ' + function if function else ''}", function=function)


def _rpc_revert_data(err: Web3RPCError) -> str | None:
    """Revert bytes in a node's JSON-RPC error (Hardhat with automine answers ``eth_sendRawTransaction``
    for a transaction that reverted when mined with ``error.data.data``, or ``error.data``)."""
    error = (err.rpc_response or {}).get("error")
    data = error.get("data") if isinstance(error, dict) else None
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, str) and data.startswith("0x") and len(data) >= 10 else None


NONCE_ATTEMPTS = 3


def _stale_nonce(err: Exception) -> bool:
    """The node refused the transaction's nonce as already used (eth-tester: "Invalid transaction
    nonce: Expected 7, but got 6"; geth/Hardhat: "nonce too low")."""
    text = str(err).lower()
    return "nonce too low" in text or "invalid transaction nonce" in text


def _fee_too_low(err: Exception) -> bool:
    """The node refused the transaction's fee (the base fee rose past a cached one)."""
    text = str(err).lower()
    return "fee" in text and ("too low" in text or "less than" in text or "underpriced" in text)


FEE_TTL = 1.0
"""Seconds the base fee read from the chain is reused for (about a block; see the module)."""
PRIORITY_TTL = 60.0
"""Seconds the node's suggested priority fee is reused for."""


class Transactor:
    """Signs, sends and awaits transactions for any number of local accounts on one connection."""

    def __init__(self, w3: AsyncWeb3[Any], *, receipt_timeout: float = 60.0, fee_ttl: float = FEE_TTL) -> None:
        self.w3 = w3
        self.receipt_timeout = receipt_timeout
        self.fee_ttl = fee_ttl
        self._locks: dict[str, asyncio.Lock] = {}
        self._nonces: dict[str, int] = {}
        self._chain_id: int | None = None
        self._fees: tuple[float, dict[str, int]] | None = None  # (monotonic time read, fee fields)
        self._fees_reading: asyncio.Future[dict[str, int]] | None = None
        self._priority: tuple[float, int] | None = None  # (monotonic time read, suggested priority fee)
        self.priority_ttl = PRIORITY_TTL

    async def fee_fields(self) -> dict[str, int]:
        """``chainId``, ``maxPriorityFeePerGas`` and ``maxFeePerGas`` for a transaction sent now
        (cached, see the module; concurrent callers share one read)."""
        cached = self._fees
        if cached is not None and time.monotonic() - cached[0] < self.fee_ttl:
            return cached[1]
        if self._fees_reading is None:
            self._fees_reading = asyncio.ensure_future(self._read_fees())
            self._fees_reading.add_done_callback(lambda _: setattr(self, "_fees_reading", None))
        return await asyncio.shield(self._fees_reading)

    async def _read_fees(self) -> dict[str, int]:
        if self._chain_id is None:
            self._chain_id = int(await self.w3.eth.chain_id)
        now = time.monotonic()
        if self._priority is not None and now - self._priority[0] < self.priority_ttl:
            priority, latest = self._priority[1], await self.w3.eth.get_block("latest")
        else:
            priority, latest = await asyncio.gather(self.w3.eth.max_priority_fee, self.w3.eth.get_block("latest"))
            self._priority = (now, int(priority))
        base = int(latest.get("baseFeePerGas", 0))
        fields = {
            "chainId": self._chain_id,
            "maxPriorityFeePerGas": int(priority),
            "maxFeePerGas": int(priority) + 2 * base,
        }
        self._fees = (time.monotonic(), fields)
        return fields

    def forget_fees(self) -> None:
        """Read the fee fields again for the next transaction."""
        self._fees = self._priority = None

    async def send(self, fn: Any, sender: LocalAccount, *, gas: int | None = None) -> TxReceipt:
        """Estimate, sign locally, send and await the receipt of a contract call or creation."""
        name = getattr(fn, "fn_name", None) or "constructor"
        address = sender.address
        lock = self._locks.setdefault(address, asyncio.Lock())
        async with lock:
            params: dict[str, Any] = {"from": address}
            try:
                estimate = gas or await fn.estimate_gas(params)
            except _REFUSALS as err:
                raise _revert_from(err, name) from err
            except Web3Exception as err:
                raise errors.ChainError(f"{name}: {err}") from err
            for attempt in range(NONCE_ATTEMPTS):
                count, fees = await asyncio.gather(
                    self.w3.eth.get_transaction_count(address, "pending"), self.fee_fields()
                )
                nonce = max(self._nonces.get(address, 0), count)
                params.update({"nonce": nonce, "gas": int(estimate * 1.25) + 20_000, **fees})
                tx = await fn.build_transaction(params)
                signed = sender.sign_transaction(tx)
                try:
                    tx_hash = await self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except Web3RPCError as err:
                    # the state moved between the estimate and the block (e.g. an epoch boundary): a node
                    # that mines on arrival reports the revert here; the next send re-reads the nonce
                    raw = _rpc_revert_data(err)
                    if raw is not None:
                        raise decode_revert(raw, name) from err
                    if _stale_nonce(err) and attempt + 1 < NONCE_ATTEMPTS:
                        # another process signing for this account (a running node and `node claim`)
                        # took the nonce between our read and our send: read it again
                        self._nonces.pop(address, None)
                        continue
                    if _fee_too_low(err) and attempt + 1 < NONCE_ATTEMPTS:
                        self.forget_fees()  # the base fee rose past the cached one
                        continue
                    raise errors.ChainError(f"{name}: {err}") from err
                except EthValidationError as err:  # the embedded chain refuses in-process, not over JSON-RPC
                    if _stale_nonce(err) and attempt + 1 < NONCE_ATTEMPTS:
                        self._nonces.pop(address, None)
                        continue
                    if _fee_too_low(err) and attempt + 1 < NONCE_ATTEMPTS:
                        self.forget_fees()
                        continue
                    raise
                break
            self._nonces[address] = nonce + 1
        try:
            receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
        except TimeExhausted as err:
            raise errors.TransactionTimeout(
                f"{name}: no receipt after {self.receipt_timeout}s", tx_hash=tx_hash.hex()
            ) from err
        if receipt["status"] != 1:
            raise await self._failure_reason(fn, address, receipt, name)
        return receipt

    async def transfer(self, sender: LocalAccount, to: str, value: int) -> TxReceipt:
        """Send ``value`` wei of the chain's native currency."""
        address = sender.address
        lock = self._locks.setdefault(address, asyncio.Lock())
        async with lock:
            latest = await self.w3.eth.get_block("latest")
            base = int(latest.get("baseFeePerGas", 10**9))
            nonce = max(self._nonces.get(address, 0), await self.w3.eth.get_transaction_count(address, "pending"))
            tx: dict[str, Any] = {
                "to": to,
                "value": value,
                "gas": 21_000,
                "nonce": nonce,
                "chainId": await self.w3.eth.chain_id,
                "maxFeePerGas": 2 * base + 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
            tx_hash = await self.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
            self._nonces[address] = nonce + 1
        try:
            receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
        except TimeExhausted as err:
            raise errors.TransactionTimeout(
                f"transfer: no receipt after {self.receipt_timeout}s", tx_hash=tx_hash.hex()
            ) from err
        return receipt

    async def _failure_reason(self, fn: Any, sender: str, receipt: TxReceipt, name: str) -> errors.ContractRevert:
        """Replay a mined-but-reverted call at its block to learn why."""
        try:
            await fn.call({"from": sender}, block_identifier=receipt["blockNumber"] - 1)
        except _REFUSALS as err:
            return _revert_from(err, name)
        except Web3Exception:
            pass
        return errors.UnknownRevert(f"{name} reverted (out of gas or state changed)", function=name)

    async def call(self, fn: Any) -> Any:
        """Read-only call; reverts become named errors.

        A bound function with positional arguments is encoded and decoded here (:func:`contracts.rpc.calldata`:
        its selector computed once) and sent as a plain ``eth_call``: web3's ``fn.call()`` looks the
        function up again in the ABI and hashes every function's signature of the contract, each call
        (~850 keccaks for 18 reads of a node's publish, the largest part of its chain reads' CPU)."""
        try:
            if not encodable(fn):
                return await fn.call()
            tx: dict[str, Any] = {"to": fn.address, "data": rpc.calldata(fn.abi, fn.args or ())}
            sender = self.w3.eth.default_account
            if isinstance(sender, str):  # as web3's call: the connection's default account, if it has one
                tx["from"] = sender
            raw = await self.w3.eth.call(tx)  # type: ignore[arg-type]
            return rpc.decode_output(fn.abi, bytes(raw), fn.address)
        except _REFUSALS as err:
            raise _revert_from(err, fn.fn_name) from err

    def forget_nonces(self) -> None:
        """Drop cached nonces (after the chain was reverted under us)."""
        self._nonces.clear()

    @staticmethod
    def event(contract: Any, name: str, receipt: TxReceipt) -> Any:
        """The single ``name`` event ``contract`` emitted in ``receipt`` (other contracts' logs ignored)."""
        logs = [log for log in receipt["logs"] if log["address"] == contract.address]
        found = getattr(contract.events, name)().process_receipt({**receipt, "logs": logs}, errors=DISCARD)
        if len(found) != 1:
            raise errors.ChainError(f"expected one {name} event, found {len(found)}")
        return found[0]

    async def create(self, name: str, sender: LocalAccount, *args: Any) -> str:
        """Deploy contract ``name`` from its committed artifact; returns its address."""
        art = contracts.load(name)
        factory = self.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        receipt = await self.send(factory.constructor(*args), sender)
        address = receipt["contractAddress"]
        if address is None:
            raise errors.DeploymentError(f"{name} was not created")
        return str(address)
