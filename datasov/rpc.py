"""Serve the embedded chain over Ethereum JSON-RPC on loopback (for ``datasov devnet up``).

Requests go through the chain's web3 middleware (``eth_getLogs`` answered by :mod:`contracts.logindex`,
the rest by eth-tester: wire format in, camelCase Python values out); results are turned back into
wire format (integers as hex quantities, bytes as hex).
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

from contracts.devchain import DevChain, TransactionFailed, raw_revert
from contracts.logindex import to_wire

log = logging.getLogger("datasov.rpc")
MAX_BODY = 4 << 20


class RpcServer:
    def __init__(self, chain: DevChain) -> None:
        if chain.kind != "embedded":
            raise ValueError("only the embedded chain is served over RPC")
        self.chain = chain
        self.tester = chain.w3.provider.ethereum_tester

    async def _local(self, method: str, params: list[Any]) -> Any:
        """Test-chain methods eth-tester does not speak, and the block number (every node asks it
        every second; through eth-tester it builds and serializes the whole latest block)."""
        if method == "eth_blockNumber":
            return hex(self.chain.head())
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
            await self.chain.revert(int(params[0], 16))  # the log index and this process's nonces too
            return True
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
            raw = raw_revert(err)
            error: dict[str, Any] = {"code": 3, "message": "execution reverted"}
            if raw is not None:
                error["data"] = "0x" + raw.hex()
            return {"jsonrpc": "2.0", "id": rid, "error": error}
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


async def serve(chain: DevChain, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Start the JSON-RPC server; returns its runner (clean up to stop) and URL."""
    runner = web.AppRunner(RpcServer(chain).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://{host}:{bound}"
