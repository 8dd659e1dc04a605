"""A log index for the embedded chain: eth-tester answers ``eth_getLogs`` by decoding every receipt
of every block in range, finding each receipt by walking back from the head, on every call (seconds
on a busy local chain, and it runs on the event loop the nodes share). This web3 middleware reads
each block's logs once, while the block is recent, and answers ``eth_getLogs`` from memory in the
wire format a real node returns. :meth:`LogIndex.forget_after` after a chain revert.

The client side, for any chain, is :class:`contracts.eventlogs.EventLogs`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from web3.middleware.base import Web3Middleware
from web3.types import RPCEndpoint, RPCResponse

MakeRequest = Callable[[RPCEndpoint, Any], Coroutine[Any, Any, RPCResponse]]


def to_wire(value: Any) -> Any:
    """eth-tester's Python values as JSON-RPC wire values (integers as hex quantities, bytes as hex)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return str(value)


class LogIndex:
    def __init__(self) -> None:
        self._logs: list[list[dict[str, Any]]] = []  # wire-format logs of block i

    def clear(self) -> None:
        self._logs.clear()

    def forget_after(self, block: int) -> None:
        """Drop what was read of the blocks after ``block`` (a revert to a snapshot at ``block``: the
        blocks up to it are the same blocks, those after it are gone or mined again)."""
        del self._logs[block + 1 :]

    async def update(self, make_request: MakeRequest, has_logs: Callable[[int], bool] = lambda _: True) -> None:
        """Read the logs of the blocks mined since the last update; ``has_logs(n)`` False means
        block n has none (its header's bloom is empty), so it is not asked for them."""
        raw = (await make_request(RPCEndpoint("eth_blockNumber"), []))["result"]
        head = int(raw, 16) if isinstance(raw, str) else int(raw)
        while len(self._logs) <= head:
            if not has_logs(len(self._logs)):
                self._logs.append([])
                continue
            block = hex(len(self._logs))
            response = await make_request(RPCEndpoint("eth_getLogs"), [{"fromBlock": block, "toBlock": block}])
            self._logs.append(to_wire(response.get("result") or []))

    def _block(self, value: Any) -> int:
        if value is None or value in ("latest", "pending", "safe", "finalized"):
            return len(self._logs) - 1
        if value == "earliest":
            return 0
        return int(value, 16) if isinstance(value, str) else int(value)

    def query(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        start = max(self._block(query.get("fromBlock")), 0)
        end = min(self._block(query.get("toBlock")), len(self._logs) - 1)
        address = query.get("address")
        addresses = {a.lower() for a in ([address] if isinstance(address, str) else address or [])}
        wanted = [
            None if t is None else {x.lower() for x in (t if isinstance(t, list) else [t])}
            for t in query.get("topics") or []
        ]
        out = []
        for logs in self._logs[start : end + 1]:
            for log in logs:
                if addresses and str(log["address"]).lower() not in addresses:
                    continue
                topics = [str(t).lower() for t in log["topics"]]
                if all(w is None or (i < len(topics) and topics[i] in w) for i, w in enumerate(wanted)):
                    out.append(log)
        return out


class LogIndexMiddleware(Web3Middleware):
    """Answers ``eth_getLogs`` (without ``blockHash``) from the provider's :class:`LogIndex`."""

    async def async_wrap_make_request(self, make_request: MakeRequest) -> MakeRequest:
        async def middleware(method: RPCEndpoint, params: Any) -> RPCResponse:
            index: LogIndex | None = getattr(self._w3.provider, "log_index", None)
            if method != "eth_getLogs" or index is None or not params or "blockHash" in params[0]:
                return await make_request(method, params)
            await index.update(make_request, _bloom_reader(self._w3.provider))
            return {"jsonrpc": "2.0", "id": 0, "result": index.query(params[0])}

        return middleware


def _bloom_reader(provider: Any) -> Callable[[int], bool]:
    """``has_logs(n)`` from block n's header bloom in eth-tester's py-evm chain (a database read,
    not eth-tester's block normalisation); every block counts as having logs on another backend."""
    chain = getattr(getattr(getattr(provider, "ethereum_tester", None), "backend", None), "chain", None)
    if chain is None:
        return lambda _: True
    return lambda n: bool(chain.get_canonical_block_header_by_number(n).bloom)
