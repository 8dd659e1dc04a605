"""Storage node benchmark on loopback: the node against bare aiohttp, measured in the same run.

    python -m bench.node [--quick] [--json]

- upload: a share PUT to a real node (order check, streamed hashing, fsync, atomic install) vs a
  bare aiohttp handler that writes the same bytes to a file and fsyncs, with no checks; target >= 0.8;
- download: GET of the whole share (every block verified on the way) vs a bare handler streaming
  the same bytes from a file; target >= 0.8;
- 4 KiB range reads with 200 concurrent clients (in ``CLIENT_PROCS`` = 1 client process of its own, so
  the load generator does not share the node's event loop; on two cores the node keeps one and the
  load generator the other): reads/s and p99 latency (target p99 < 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from eth_account import Account

from erasure import merkle
from storage_node.client import NodeClient
from storage_node.node import NodeConfig, StorageNode
from storage_node.orders import StorageOrder

MiB = 1 << 20
DS = "be" * 32
CLIENT_PROCS = 1
ROUNDS = 3


async def bare_server(payload: bytes, directory: Path) -> tuple[web.AppRunner, str]:
    """aiohttp storing and serving the same bytes as the node, with none of its checks: the upload
    is written to a file and fsynced (as the node does), the download is read back from a file."""
    stored = directory / "bare.blob"
    stored.write_bytes(payload)

    async def put(request: web.Request) -> web.Response:
        target = directory / "bare-upload.blob"
        f = await asyncio.to_thread(target.open, "wb")
        async for chunk in request.content.iter_chunked(MiB):
            await asyncio.to_thread(f.write, chunk)
        await asyncio.to_thread(os.fsync, f.fileno())
        f.close()
        return web.json_response({"ok": True}, status=201)

    async def get(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = len(payload)
        await resp.prepare(request)
        with stored.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, MiB):
                await resp.write(chunk)
        return resp

    app = web.Application()
    app.router.add_put("/blob", put)
    app.router.add_get("/blob", get)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/blob"


async def body(data: bytes):  # type: ignore[no-untyped-def]
    view = memoryview(data)
    for i in range(0, len(data), MiB):
        yield bytes(view[i : i + MiB])


async def run(size: int, range_reads: int) -> dict[str, float]:
    data = os.urandom(size)
    out: dict[str, float] = {"share_mib": size / MiB}
    with tempfile.TemporaryDirectory(prefix="datasov-bench-node-") as tmp:
        node = StorageNode(NodeConfig(home=Path(tmp), capacity=(ROUNDS + 1) * size))
        await node.start()
        runner, bare_url = await bare_server(data, Path(tmp))
        owner = Account.create()
        try:
            async with aiohttp.ClientSession() as session, NodeClient() as client:
                # best of ROUNDS, bare and node alternating so that drift on this shared machine hits both
                bare_up = bare_down = up = down = 0.0
                for r in range(ROUNDS):
                    t = time.perf_counter()
                    async with session.put(bare_url, data=body(data)) as resp:
                        await resp.read()
                    bare_up = max(bare_up, size / (time.perf_counter() - t))
                    order = StorageOrder.new(
                        node=node.address,
                        dataset=DS,
                        index=r,
                        share_root=merkle.root(data, 1024, 2),
                        size=size,
                        leaf_size=1024,
                        block_size=256 * 1024,
                    )
                    t = time.perf_counter()
                    await client.put_share(node.url, order, owner, body(data))
                    up = max(up, size / (time.perf_counter() - t))
                    t = time.perf_counter()
                    async with session.get(bare_url) as resp:
                        async for _ in resp.content.iter_chunked(MiB):
                            pass
                    bare_down = max(bare_down, size / (time.perf_counter() - t))
                    t = time.perf_counter()
                    async for _ in client.stream_share(node.url, DS, 0):
                        pass
                    down = max(down, size / (time.perf_counter() - t))
                out.update(
                    {
                        "bare_upload_mbps": round(bare_up / 1e6, 1),
                        "upload_mbps": round(up / 1e6, 1),
                        "upload_ratio": round(up / bare_up, 3),
                        "bare_download_mbps": round(bare_down / 1e6, 1),
                        "download_mbps": round(down / 1e6, 1),
                        "download_ratio": round(down / bare_down, 3),
                    }
                )

                # 4 KiB range reads, 200 concurrent clients, from client processes of their own (clients
                # are other machines in real life; here they must not take the node's core)
                procs = [
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bench.node",
                        "--range-client",
                        node.url,
                        str(size),
                        str(range_reads // CLIENT_PROCS),
                        str(200 // CLIENT_PROCS),
                        stdout=asyncio.subprocess.PIPE,
                    )
                    for _ in range(CLIENT_PROCS)
                ]
                results = [json.loads((await p.communicate())[0]) for p in procs]
                latencies = sorted(lat for r in results for lat in r["latencies"])
                elapsed = max(r["elapsed"] for r in results)
                out.update(
                    {
                        "range_reads_per_s": round(len(latencies) / elapsed),
                        "range_p50_ms": round(statistics.median(latencies) * 1000, 2),
                        "range_p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2),
                        "range_client_processes": CLIENT_PROCS,
                    }
                )
        finally:
            await runner.cleanup()
            await node.stop()
    return out


async def range_client(url: str, size: int, reads: int, concurrency: int) -> dict[str, object]:
    """One client process: ``reads`` random 4 KiB range GETs, ``concurrency`` at a time."""
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    offsets = [int.from_bytes(os.urandom(4), "big") % (size - 4096) for _ in range(reads)]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(offset: int) -> None:
            async with sem:
                t0 = time.perf_counter()
                headers = {"Range": f"bytes={offset}-{offset + 4095}"}
                async with session.get(f"{url}/v1/shares/{DS}/0", headers=headers) as resp:
                    got = await resp.read()
                latencies.append(time.perf_counter() - t0)
                assert resp.status == 206
                assert len(got) == 4096

        t = time.perf_counter()
        await asyncio.gather(*(one(o) for o in offsets))
        return {"latencies": latencies, "elapsed": time.perf_counter() - t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--range-client", nargs=4, metavar=("URL", "SIZE", "READS", "CONCURRENCY"), help=argparse.SUPPRESS
    )
    parser.add_argument("--quick", action="store_true", help="64 MiB share, 2,000 range reads")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    if args.range_client:
        url, size_s, reads_s, conc_s = args.range_client
        print(json.dumps(asyncio.run(range_client(url, int(size_s), int(reads_s), int(conc_s)))))
        return
    size, reads = (64 * MiB, 2000) if args.quick else (512 * MiB, 10000)
    out = asyncio.run(run(size, reads))
    print(f"node benchmark on loopback, {out['share_mib']:.0f} MiB share")
    print(
        f"  upload  {out['upload_mbps']:8.1f} MB/s= {out['upload_ratio']:.2f}x bare aiohttp ({out['bare_upload_mbps']})"
    )
    print(
        f"  download {out['download_mbps']:8.1f} MB/s = {out['download_ratio']:.2f}x bare aiohttp "
        f"({out['bare_download_mbps']})"
    )
    print(
        f"  4 KiB range reads, 200 concurrent from {CLIENT_PROCS} client process(es): "
        f"{out['range_reads_per_s']:,.0f}/s, p50 {out['range_p50_ms']} ms, "
        f"p99 {out['range_p99_ms']} ms (limit 50 ms)"
    )
    if args.json:
        print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
