"""The node's upload receive path against bare aiohttp, measured in the same run.

    python -m bench.uploads [--quick] [--parallel N] [--json]

``N`` shares uploaded at once (``PUT /v1/pending/{deal}/{index}``, the streaming publish's path)
to a storage node in its own process (order checks, reservation, every block hashed on the way in,
fsync, held pending) and to a bare aiohttp server in its own process writing the same bytes to a
file and fsyncing it (:mod:`bench.rangeload` ``bare``); this process is the client. Rounds
alternate bare and node after one warm-up round each. Prints each server's best MiB/s, its CPU time
per received MiB (from ``/proc``: on a shared machine wall-clock rates measure the neighbours, CPU
per MiB much less so), and the node/bare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from eth_account import Account

from storage_node.orders import PendingOrder

from .node import ROUNDS, _cpu_seconds, _spawn, _stop

MiB = 1 << 20


async def _body(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for i in range(0, len(data), MiB):
        yield bytes(view[i : i + MiB])


async def _round(session: aiohttp.ClientSession, url: str, address: str, shares: list[bytes], deal: int) -> float:
    """Upload every share at once (share i as index i of deal ``deal``); seconds taken."""
    owner = Account.create()

    async def one(index: int, data: bytes) -> None:
        order = PendingOrder.new(
            node=address, deal_id=deal, index=index, size=len(data), leaf_size=1024, block_size=256 * 1024
        )
        headers = {**order.headers(owner), "Content-Length": str(len(data))}
        async with session.put(f"{url}/v1/pending/{deal}/{index}", data=_body(data), headers=headers) as resp:
            if resp.status != 202:
                raise RuntimeError(f"{url} answered {resp.status}: {await resp.text()}")

    t = time.perf_counter()
    await asyncio.gather(*(one(i, d) for i, d in enumerate(shares)))
    return time.perf_counter() - t


async def run(size: int, parallel: int) -> dict[str, float]:
    shares = [os.urandom(size) for _ in range(parallel)]
    total = size * parallel
    with tempfile.TemporaryDirectory(prefix="datasov-bench-uploads-") as tmp:
        blob = Path(tmp) / "bare" / "range.blob"
        blob.parent.mkdir()
        blob.write_bytes(b"\0")
        capacity = (ROUNDS + 2) * total
        node, node_url = await _spawn("-m", "bench.node", "--serve-node", str(Path(tmp) / "node"), str(capacity))
        bare, bare_url = await _spawn("-m", "bench.rangeload", "bare", str(blob))
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.get(f"{node_url}/v1/health") as resp:
                    address = (await resp.json())["address"]
                rate: dict[str, float] = {}
                cpu: dict[str, float] = {}
                for r in range(ROUNDS + 1):  # round 0 warms both
                    for name, url, server in (("bare", bare_url, bare), ("node", node_url, node)):
                        used = _cpu_seconds(server.pid)
                        took = await _round(session, url, address, shares, deal=r + 1)
                        used = _cpu_seconds(server.pid) - used
                        if r > 0:
                            rate[name] = max(rate.get(name, 0.0), total / MiB / took)
                            cpu[name] = min(cpu.get(name, float("inf")), used / (total / MiB))
        finally:
            await asyncio.gather(_stop(node), _stop(bare))
    return {
        "share_mib": size / MiB,
        "parallel": parallel,
        "node_mib_per_s": round(rate["node"], 1),
        "bare_mib_per_s": round(rate["bare"], 1),
        "ratio": round(rate["node"] / rate["bare"], 3),
        "node_cpu_ms_per_mib": round(cpu["node"] * 1000, 3),
        "bare_cpu_ms_per_mib": round(cpu["bare"] * 1000, 3),
        "cpu_ratio": round(cpu["bare"] / cpu["node"], 3) if cpu["node"] else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="16 MiB shares (else 64 MiB)")
    parser.add_argument("--parallel", type=int, default=8, help="shares uploaded at once (the node's default cap: 8)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    out = asyncio.run(run((16 if args.quick else 64) * MiB, args.parallel))
    print(
        f"uploads on loopback, {args.parallel} x {out['share_mib']:.0f} MiB at once (node, bare and client each a "
        f"process; machine shared, so the CPU figures are the steadier ones):\n"
        f"  node {out['node_mib_per_s']:8.1f} MiB/s = {out['ratio']:.2f}x bare aiohttp "
        f"({out['bare_mib_per_s']} MiB/s)\n"
        f"  server CPU per received MiB: node {out['node_cpu_ms_per_mib']} ms, bare {out['bare_cpu_ms_per_mib']} ms "
        f"(node = {out['cpu_ratio']:.2f}x bare's MiB per CPU second)"
    )
    if args.json:
        print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
