"""A whole share's transfer alone, client side: aiohttp on the event loop vs http.client on a thread.

    python -m bench.fetch_transfer [--quick] [--size MiB] [--shares K]

An aiohttp file server process on loopback (sendfile, as a storage node answers a whole-share GET) serves
K files of SIZE/K MiB; the client reads them at once, cut into 256 KiB blocks as a whole fetch
does (:meth:`storage_node.client.NodeClient.share_blocks`), three ways, alternating rounds:

- ``aiohttp``: ``resp.content.readexactly(block)`` on the event loop (the path before);
- ``thread``: one thread per share, ``http.client`` ``readinto`` a fresh block buffer (recv
  releases the GIL; the loop only hears of each block).

The server is its own process. Prints wall time, MiB/s and the client process's CPU seconds per GiB
(``time.process_time``), and the ratio of the two.
The machine may be loaded by other work: read the ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from storage_node.client import NodeClient

BLOCK = 256 * 1024


SERVER = """
import asyncio, sys
from pathlib import Path
from aiohttp import web


async def main():
    root = Path(sys.argv[1])

    async def share(request):
        return web.FileResponse(root / request.match_info["index"])

    app = web.Application()
    app.router.add_get("/v1/shares/{dataset}/{index}", share)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _serve(root: Path) -> tuple[subprocess.Popen[str], str]:
    """A file server in its own process (as a node is), on loopback; its URL."""
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


async def _aiohttp(client: NodeClient, url: str, sizes: list[int], shares: int) -> int:
    async def one(j: int) -> int:
        got = 0
        async with client.session.get(client.share_url(url, "d", j)) as resp:
            for size in sizes:
                got += len(await resp.content.readexactly(size))
        return got

    return sum(await asyncio.gather(*(one(j) for j in range(shares))))


async def _thread(client: NodeClient, url: str, sizes: list[int], shares: int) -> int:
    async def one(j: int) -> int:
        got = 0
        async for block in client.share_blocks(url, "d", j, sizes):
            got += len(block)
        return got

    return sum(await asyncio.gather(*(one(j) for j in range(shares))))


async def main_async(size_mib: int, shares: int, rounds: int) -> None:
    per_share = size_mib * (1 << 20) // shares // BLOCK * BLOCK
    sizes = [BLOCK] * (per_share // BLOCK)
    with tempfile.TemporaryDirectory(prefix="datasov-bench-transfer-") as tmp:
        root = Path(tmp)
        for j in range(shares):
            (root / str(j)).write_bytes(os.urandom(per_share))
        server, url = _serve(root)
        results: dict[str, list[tuple[float, float]]] = {"aiohttp": [], "thread": []}
        try:
            async with NodeClient() as client:
                for _ in range(rounds):
                    for name, way in (("aiohttp", _aiohttp), ("thread", _thread)):
                        t, c = time.perf_counter(), time.process_time()
                        got = await way(client, url, sizes, shares)
                        assert got == per_share * shares
                        results[name].append((time.perf_counter() - t, time.process_time() - c))
        finally:
            server.kill()
            server.wait()
            if server.stdout is not None:
                server.stdout.close()
    total = per_share * shares
    best = {name: min(r) for name, r in results.items()}
    for name, (wall, cpu) in best.items():
        print(
            f"{name:<8} {wall:6.3f} s  {total / wall / (1 << 20):7.1f} MiB/s  "
            f"client CPU {cpu / total * (1 << 30):5.2f} s/GiB"
        )
    a, b = best["aiohttp"], best["thread"]
    print(f"thread vs aiohttp: {a[0] / b[0]:.2f}x the speed, {b[1] / a[1]:.2f}x the CPU (best of {rounds})")
    print(f"# load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 MiB, 2 rounds")
    parser.add_argument("--size", type=int, default=256, help="MiB in all (default 256)")
    parser.add_argument("--shares", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size, rounds = (64, 2) if args.quick else (args.size, args.rounds)
    asyncio.run(main_async(size, args.shares, rounds))


if __name__ == "__main__":
    main()
