"""Chain reads over raw JSON-RPC: contract calls and event logs without web3.

web3 costs about a second to import (eth_account's eth_keyfile imports py_ecc's BLS12-381), more
than a command that only reads the chain may spend in all. Reads need far less: ``eth_call``,
``eth_getLogs`` and a few block queries, with the committed ABIs (:mod:`contracts`) and eth_abi to
encode and decode. :class:`RpcContract` binds one contract over a :class:`Transport` with the part
of web3's ``AsyncContract`` interface the wrappers read through (``contract.functions.name(*args)
.call()`` and ``contract.events.Name().get_logs(...)``), returning what web3 returns (checksummed
addresses, lists for arrays, tuples for structs, a single output unwrapped; logs as dicts with
``args``, ``blockNumber``, ``logIndex``, ``transactionHash``...). So each wrapper method in
:mod:`contracts.registry`, :mod:`contracts.licenses`... is defined once and runs over either backend:
web3's contracts (transactions, the embedded chain) or these (:meth:`contracts.chain.Chain.reader`).
A refused call raises the named error of its Solidity custom error (:mod:`contracts.reverts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property, lru_cache
from typing import Any, Protocol

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from . import errors
from .reverts import abi_type, decode_revert
from .rpc_http import HttpTransport


class Transport(Protocol):
    """One JSON-RPC endpoint: ``await request(method, params)`` is the call's ``result``."""

    async def request(self, method: str, params: list[Any]) -> Any: ...


def _block(value: int | str) -> str:
    """A block parameter: a number, or a tag ("latest", "pending", "earliest")."""
    return value if isinstance(value, str) and not value.isdigit() else hex(int(value))


def _normalize(kind: str, value: Any, components: Sequence[dict[str, Any]] = ()) -> Any:
    """A decoded value as web3 returns it: addresses checksummed, arrays as lists, structs as tuples."""
    if kind.endswith("]"):
        inner = kind[: kind.rindex("[")]
        return [_normalize(inner, v, components) for v in value]
    if kind == "tuple":
        return tuple(_normalize(c["type"], v, c.get("components", ())) for c, v in zip(components, value, strict=True))
    if kind == "address":
        return to_checksum_address(value)
    return value


def _signature(item: dict[str, Any]) -> str:
    return f"{item['name']}({','.join(abi_type(p) for p in item['inputs'])})"


@lru_cache(maxsize=1024)
def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def calldata(item: dict[str, Any], args: Sequence[Any]) -> bytes:
    """The call data of ABI function ``item`` with ``args``: its selector (computed once per
    signature; web3 computes every function's of the contract on each call) and the encoded args."""
    types = [abi_type(p) for p in item["inputs"]]
    return _selector(_signature(item)) + abi_encode(types, list(args))


def decode_output(item: dict[str, Any], data: bytes, address: str) -> Any:
    """What ABI function ``item`` returned, as web3 returns it (a single output unwrapped)."""
    outputs = item["outputs"]
    if not data and outputs:
        raise errors.ChainError(f"{item['name']}: empty answer (no contract at {address}?)")
    values = abi_decode([abi_type(p) for p in outputs], data)
    result = [_normalize(p["type"], v, p.get("components", ())) for p, v in zip(outputs, values, strict=True)]
    return result[0] if len(result) == 1 else result


class RpcFunction:
    """One call of a contract function with its arguments (web3's ``ContractFunction`` for reads)."""

    def __init__(self, contract: RpcContract, item: dict[str, Any], args: tuple[Any, ...]) -> None:
        self.contract = contract
        self.abi = item
        self.fn_name: str = item["name"]
        self.args = args

    def calldata(self) -> str:
        return "0x" + calldata(self.abi, self.args).hex()

    async def call(self, transaction: dict[str, Any] | None = None, block_identifier: int | str = "latest") -> Any:
        """``eth_call`` at ``block_identifier``; a revert raises its named error."""
        tx = {**(transaction or {}), "to": self.contract.address, "data": self.calldata()}
        try:
            raw = await self.contract.rpc.request("eth_call", [tx, _block(block_identifier)])
        except errors.CallReverted as err:
            raise decode_revert(err.data, self.fn_name) from err
        return decode_output(self.abi, bytes.fromhex(str(raw)[2:]), self.contract.address)


class RpcEvent:
    """One event type of a contract (web3's ``ContractEvent`` for ``get_logs``)."""

    def __init__(self, contract: RpcContract, item: dict[str, Any]) -> None:
        self.contract = contract
        self.abi = item
        self.event_name: str = item["name"]
        self.topic = "0x" + keccak(text=_signature(item)).hex()

    def _topic(self, param: dict[str, Any], value: Any) -> str | list[str]:
        if isinstance(value, list | tuple) and not param["type"].endswith("]"):
            return [str(self._topic(param, v)) for v in value]  # any of these
        return "0x" + abi_encode([abi_type(param)], [value]).hex()

    async def get_logs(
        self,
        *,
        from_block: int | str = "earliest",
        to_block: int | str = "latest",
        argument_filters: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The event's logs in ``[from_block, to_block]``, decoded; ``argument_filters`` as web3's
        (indexed arguments filtered by the node, the others here)."""
        filters = dict(argument_filters or {})
        topics: list[Any] = [self.topic]
        for param in (p for p in self.abi["inputs"] if p["indexed"]):
            topics.append(self._topic(param, filters.pop(param["name"])) if param["name"] in filters else None)
        while topics[-1] is None:
            topics.pop()
        query = {
            "address": self.contract.address,
            "fromBlock": _block(from_block),
            "toBlock": _block(to_block),
            "topics": topics,
        }
        logs = [self._decode(raw) for raw in await self.contract.rpc.request("eth_getLogs", [query]) or []]
        return [log for log in logs if all(log["args"].get(k) == _wanted(v) for k, v in filters.items())]

    def _decode(self, raw: dict[str, Any]) -> dict[str, Any]:
        inputs = self.abi["inputs"]
        indexed = [p for p in inputs if p["indexed"]]
        plain = [p for p in inputs if not p["indexed"]]
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, raw["topics"][1:], strict=True):
            kind = abi_type(param)
            if kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("("):
                args[param["name"]] = bytes.fromhex(topic[2:])  # a hash of the value, as web3 gives it
            else:
                (value,) = abi_decode([kind], bytes.fromhex(topic[2:]))
                args[param["name"]] = _normalize(param["type"], value, param.get("components", ()))
        values = abi_decode([abi_type(p) for p in plain], bytes.fromhex(raw["data"][2:]))
        for param, value in zip(plain, values, strict=True):
            args[param["name"]] = _normalize(param["type"], value, param.get("components", ()))
        return {
            "args": {p["name"]: args[p["name"]] for p in inputs},
            "event": self.event_name,
            "address": to_checksum_address(raw["address"]),
            "blockNumber": int(raw["blockNumber"], 16),
            "blockHash": bytes.fromhex(raw["blockHash"][2:]),
            "logIndex": int(raw["logIndex"], 16),
            "transactionIndex": int(raw["transactionIndex"], 16),
            "transactionHash": bytes.fromhex(raw["transactionHash"][2:]),
        }


def _wanted(value: Any) -> Any:
    return (
        to_checksum_address(value) if isinstance(value, str) and value.startswith("0x") and len(value) == 42 else value
    )


class _Functions:
    def __init__(self, contract: RpcContract) -> None:
        self._contract = contract

    def __getattr__(self, name: str) -> Any:
        item = self._contract.items("function").get(name)
        if item is None:
            raise AttributeError(f"{self._contract.name} has no function {name!r}")
        return lambda *args: RpcFunction(self._contract, item, args)


class _Events:
    def __init__(self, contract: RpcContract) -> None:
        self._contract = contract

    def __getattr__(self, name: str) -> Any:
        item = self._contract.items("event").get(name)
        if item is None:
            raise AttributeError(f"{self._contract.name} has no event {name!r}")
        return lambda: RpcEvent(self._contract, item)


class RpcContract:
    """A deployed contract read over ``rpc``: ``c.functions.getDataset(1).call()``,
    ``c.events.DealOpened().get_logs(from_block=..., argument_filters={...})``."""

    def __init__(self, rpc: Transport, name: str, address: str, abi: list[dict[str, Any]]) -> None:
        self.rpc = rpc
        self.name = name
        self.address = to_checksum_address(address)
        self.abi = abi
        self.functions = _Functions(self)
        self.events = _Events(self)

    def items(self, kind: str) -> dict[str, dict[str, Any]]:
        return self._items[kind]

    @cached_property
    def _items(self) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {"function": {}, "event": {}}
        for item in self.abi:
            if item["type"] in out:
                if item["name"] in out[item["type"]]:
                    raise errors.ChainError(f"{self.name}.{item['name']} is overloaded: not supported by light reads")
                out[item["type"]][item["name"]] = item
        return out


async def block_number(rpc: Transport) -> int:
    return int(await rpc.request("eth_blockNumber", []), 16)


async def get_block(rpc: Transport, block: int | str = "latest") -> dict[str, Any]:
    """A block's header fields as web3 gives them: ``number``, ``timestamp`` (ints), ``hash`` (bytes)."""
    raw = await rpc.request("eth_getBlockByNumber", [_block(block), False])
    if raw is None:
        raise errors.ChainError(f"no block {block}")
    out: dict[str, Any] = {k: int(raw[k], 16) for k in ("number", "timestamp") if k in raw}
    out["hash"] = bytes.fromhex(raw["hash"][2:])
    if raw.get("baseFeePerGas") is not None:
        out["baseFeePerGas"] = int(raw["baseFeePerGas"], 16)
    return out


async def get_balance(rpc: Transport, address: str) -> int:
    return int(await rpc.request("eth_getBalance", [to_checksum_address(address), "latest"]), 16)


async def chain_id(rpc: Transport) -> int:
    return int(await rpc.request("eth_chainId", []), 16)


async def get_code(rpc: Transport, address: str) -> bytes:
    return bytes.fromhex(str(await rpc.request("eth_getCode", [to_checksum_address(address), "latest"]))[2:])


__all__ = ["HttpTransport", "RpcContract", "RpcEvent", "RpcFunction", "Transport", "calldata", "decode_output"]
