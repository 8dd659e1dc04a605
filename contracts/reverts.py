"""Reverts by name: raw revert data (selector + ABI-encoded arguments) as the named Python class of
its Solidity custom error (:mod:`contracts.errors`), for the chain client's two paths (web3
transactions in :mod:`contracts.tx`, light reads in :mod:`contracts.rpc`). Needs eth_abi only.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

import contracts

from . import errors


def abi_type(param: dict[str, Any]) -> str:
    """The canonical ABI type of an ABI parameter (tuples spelled out: ``(uint256,address)[]``)."""
    if param["type"].startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


@cache
def _error_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table = {}
    for name in contracts.ARTIFACTS:
        for item in contracts.load(name).abi:
            if item["type"] != "error":
                continue
            types = [abi_type(p) for p in item["inputs"]]
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            table[selector] = (item["name"], types, [p["name"] for p in item["inputs"]])
    return table


_PANICS = {0x01: "assert failed", 0x11: "arithmetic overflow", 0x12: "division by zero", 0x32: "index out of range"}


def decode_revert(data: str | bytes | None, function: str = "") -> errors.ContractRevert:
    """The named error for raw revert data (selector + ABI-encoded arguments)."""
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else (data or b"")
    where = f" in {function}" if function else ""
    if len(raw) >= 4 and raw[:4] in _error_table():
        name, types, names = _error_table()[raw[:4]]
        try:
            values = dict(zip(names, abi_decode(types, raw[4:]), strict=True))
        except Exception:  # malformed arguments: still name the error
            values = {}
        shown = ", ".join(f"{k}={v.hex() if isinstance(v, bytes) else v}" for k, v in values.items())
        return errors.revert_class(name)(f"{name}({shown}){where}", values=values, function=function)
    if raw[:4] == keccak(text="Panic(uint256)")[:4] and len(raw) == 36:
        code = int.from_bytes(raw[4:], "big")
        return errors.UnknownRevert(f"panic 0x{code:02x} ({_PANICS.get(code, 'panic')}){where}", function=function)
    if raw[:4] == keccak(text="Error(string)")[:4]:
        (reason,) = abi_decode(["string"], raw[4:])
        return errors.UnknownRevert(f"reverted: {reason}{where}", function=function)
    return errors.UnknownRevert(f"reverted without reason{where}", function=function)
