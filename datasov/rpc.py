"""Serve the embedded chain over Ethereum JSON-RPC on loopback (for ``datasov devnet up``).

Requests go through web3's eth-tester middleware (wire format in, eth-tester calls, camelCase
results out); results are turned back into wire format (integers as hex quantities, bytes as hex).
Reverts answer ``{"code": 3, "message": "execution reverted", "data": "0x..."}`` like geth and
Hardhat, so clients decode custom errors the same way. The Hardhat-style test methods our chain
client uses (``hardhat_mine``, ``evm_mine``, ``evm_increaseTime``, ``evm_snapshot``,
``evm_revert``) are served too. Only bind it to loopback: it holds unlocked development accounts.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from eth_tester.exceptions import TransactionFailed
from web3.types import RPCEndpoint

from market.chain import Chain
from market.tx import _raw_revert

log = logging.getLogger("datasov.rpc")
MAX_BODY = 4 << 20


def to_wire(value: Any) -> Any:
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


class RpcServer:
    def __init__(self, chain: Chain) -> None:
        if chain.kind != "embedded":
            raise ValueError("only the embedded chain is served over RPC")
        self.chain = chain
        self.tester = chain.w3.provider.ethereum_tester
        self._logs: list[list[dict[str, Any]]] = []  # wire-format logs of block i

    # eth-tester filters logs by decoding every receipt of every block in range, on each query (and
    # the chain shares this event loop with the nodes): index each block's logs once instead.
    async def index_logs(self) -> None:
        head = int(await self.chain.w3.eth.block_number)
        while len(self._logs) <= head:
            block = hex(len(self._logs))
            response = await self.chain.w3.manager._coro_make_request(
                RPCEndpoint("eth_getLogs"), [{"fromBlock": block, "toBlock": block}]
            )
            self._logs.append(to_wire(response.get("result") or []))

    async def _block_param(self, value: Any, default: int) -> int:
        if value is None:
            return default
        if value in ("latest", "pending", "safe", "finalized"):
            return len(self._logs) - 1
        if value == "earliest":
            return 0
        return int(value, 16) if isinstance(value, str) else int(value)

    async def get_logs(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        await self.index_logs()
        start = await self._block_param(query.get("fromBlock"), len(self._logs) - 1)
        end = min(await self._block_param(query.get("toBlock"), len(self._logs) - 1), len(self._logs) - 1)
        address = query.get("address")
        addresses = {a.lower() for a in ([address] if isinstance(address, str) else address or [])}
        topics = query.get("topics") or []
        out = []
        for logs in self._logs[max(start, 0) : end + 1]:
            for log in logs:
                if addresses and str(log["address"]).lower() not in addresses:
                    continue
                if all(
                    want is None
                    or (i < len(log["topics"]) and log["topics"][i] in (want if isinstance(want, list) else [want]))
                    for i, want in enumerate(topics)
                ):
                    out.append(log)
        return out

    async def _local(self, method: str, params: list[Any]) -> Any:
        """Test-chain methods eth-tester does not speak."""
        if method == "hardhat_mine":
            self.tester.mine_blocks(int(params[0], 16) if params else 1)
            return True
        if method == "evm_mine":
            self.tester.mine_blocks(1)
            return "0x0"
        if method == "evm_increaseTime":
            latest = await self.chain.w3.eth.get_block("latest")
            seconds = int(params[0], 16) if isinstance(params[0], str) else int(params[0])
            self.tester.time_travel(int(latest["timestamp"]) + seconds)
            return hex(seconds)
        if method == "evm_snapshot":
            return hex(self.tester.take_snapshot())
        if method == "evm_revert":
            self.tester.revert_to_snapshot(int(params[0], 16))
            self._logs.clear()  # the blocks after the snapshot are gone
            return True
        if method == "eth_getLogs" and params and isinstance(params[0], dict) and "blockHash" not in params[0]:
            return await self.get_logs(params[0])
        raise KeyError(method)

    async def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        rid = request.get("id")
        method, params = request.get("method"), request.get("params") or []
        if not isinstance(method, str) or not isinstance(params, list):
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32600, "message": "invalid request"}}
        try:
            try:
                result = await self._local(method, params)
            except KeyError:
                response = await self.chain.w3.manager._coro_make_request(method, params)  # type: ignore[arg-type]
                if "error" in response:
                    return {"jsonrpc": "2.0", "id": rid, "error": to_wire(response["error"])}
                result = to_wire(response.get("result"))
        except TransactionFailed as err:
            raw = _raw_revert(err)
            error: dict[str, Any] = {"code": 3, "message": "execution reverted"}
            if raw is not None:
                error["data"] = "0x" + raw.hex()
            return {"jsonrpc": "2.0", "id": rid, "error": error}
        except NotImplementedError:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"{method} not supported"}}
        except Exception as err:  # a bad request must not take the devnet down
            log.debug("rpc %s failed", method, exc_info=True)
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32000, "message": str(err)}}
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            )
        if isinstance(body, list):
            return web.json_response([await self.answer(r) for r in body if isinstance(r, dict)])
        if not isinstance(body, dict):
            return web.json_response({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid"}})
        return web.json_response(await self.answer(body))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/", self.handle)
        return app


async def serve(chain: Chain, host: str, port: int) -> tuple[web.AppRunner, str, RpcServer]:
    """Start the JSON-RPC server; returns its runner (clean up to stop), URL and the server (call
    :meth:`RpcServer.index_logs` as blocks are mined: eth-tester finds a receipt by walking back
    from the head, so indexing each block while it is recent stays cheap)."""
    server = RpcServer(chain)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://{host}:{bound}", server
