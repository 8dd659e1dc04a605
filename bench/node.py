"""Storage node benchmark on loopback: the node against bare aiohttp, measured in the same run.

    python -m bench.node [--quick] [--ranges | --transfers] [--json]

- upload: a share PUT to a real node (order check, streamed hashing, fsync, atomic install) vs a
  bare aiohttp handler that writes the same bytes to a file and fsyncs, with no checks; target >= 0.8;
- download: GET of the whole share from the node (its own process, sent with sendfile; its blocks
  verified at rest since the upload, ``storage_node/store/at_rest.py``), from a second node process
  checking every block of every download (``reverify_after = 0``: read and hashed a few MiB ahead, as
  after a restart or once the record is older than ``reverify_after``), and from the bare
  ``web.FileResponse`` server below (its own process, sendfile, no checks), this process the client;
  best of seven alternating rounds (``DOWNLOAD_ROUNDS``); target >= 0.8;
- 16 KiB range reads at random offsets, 200 concurrent keep-alive clients: the node (its own process,
  every range verified leaf by leaf) vs a bare aiohttp file server (its own process,
  ``web.FileResponse``: aiohttp's Range handling and sendfile, no checks) serving the same bytes; the
  load generator (:mod:`bench.rangeload`) is a third process, so it shares neither server's event loop
  (on two cores a server keeps one and the load generator the other). Rounds alternate bare and node
  after one warm-up round each; best round of each: reads/s, p50, p99; targets ratio >= 0.8, p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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
from storage_node.node import NodeConfig, StorageNode, freeze_startup_objects
from storage_node.orders import StorageOrder

from .rangeload import LoopProbe, wait_for_stdin_eof

MiB = 1 << 20
DS = "be" * 32
ROUNDS = 3
DOWNLOAD_ROUNDS = 7  # a 64 MiB download takes tens of milliseconds: more rounds, less of the neighbours' noise
SPAN = 16 * 1024
CONCURRENCY = 200


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


async def run(size: int, range_reads: int, *, only_ranges: bool = False, no_ranges: bool = False) -> dict[str, float]:
    data = os.urandom(size)
    out: dict[str, float] = {"share_mib": size / MiB}
    with tempfile.TemporaryDirectory(prefix="datasov-bench-node-") as tmp:
        if not only_ranges:
            out.update(await transfers(data, Path(tmp)))
        out.update(await served(data, Path(tmp), range_reads, whole=not only_ranges, ranges=not no_ranges))
    return out


async def transfers(data: bytes, tmp: Path) -> dict[str, float]:
    """Whole-share upload, node vs bare aiohttp (both in this process)."""
    size = len(data)
    node = StorageNode(NodeConfig(home=tmp / "transfer-node", capacity=(ROUNDS + 1) * size))
    await node.start()
    runner, bare_url = await bare_server(data, tmp)
    owner = Account.create()
    try:
        async with aiohttp.ClientSession() as session, NodeClient() as client:
            # best of ROUNDS, bare and node alternating so that drift on this shared machine hits both
            bare_up = up = 0.0
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
    finally:
        await runner.cleanup()
        await node.stop()
    return {
        "bare_upload_mbps": round(bare_up / 1e6, 1),
        "upload_mbps": round(up / 1e6, 1),
        "upload_ratio": round(up / bare_up, 3),
    }


async def downloads(urls: dict[str, tuple[str, asyncio.subprocess.Process]], size: int) -> dict[str, float]:
    """Whole-share GETs from the node (verified at rest), the node checking every block and the bare
    ``FileResponse`` server (each its own process, this one the client): best MB/s of each and server
    CPU per MiB sent, rounds alternating."""
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        for r in range(DOWNLOAD_ROUNDS + 1):  # round 0 warms both
            for name, (url, server) in urls.items():
                used = _cpu_seconds(server.pid)
                t = time.perf_counter()
                got = 0
                async with session.get(f"{url}/v1/shares/{DS}/0") as resp:
                    async for piece in resp.content.iter_chunked(MiB):
                        got += len(piece)
                rate = got / (time.perf_counter() - t)
                used = _cpu_seconds(server.pid) - used
                if got != size:
                    raise RuntimeError(f"{name} sent {got} of {size} bytes")
                if r > 0:
                    best[name] = max(best.get(name, 0.0), rate)
                    cpu[name] = min(cpu.get(name, float("inf")), used / (size / MiB))
    return {
        "bare_download_mbps": round(best["bare"] / 1e6, 1),
        "download_mbps": round(best["node"] / 1e6, 1),
        "download_ratio": round(best["node"] / best["bare"], 3),
        "checked_download_mbps": round(best["checking"] / 1e6, 1),
        "checked_download_ratio": round(best["checking"] / best["bare"], 3),
        "download_cpu_ms_per_mib": round(cpu["node"] * 1000, 3),
        "checked_download_cpu_ms_per_mib": round(cpu["checking"] * 1000, 3),
        "bare_download_cpu_ms_per_mib": round(cpu["bare"] * 1000, 3),
    }


async def _spawn(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """A server process of this benchmark and the URL it prints once listening."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    if not line.startswith(b"http://"):
        proc.kill()
        raise RuntimeError(f"server {args} did not start: {line!r}")
    return proc, line.decode().strip()


async def _stop(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()  # by its PID: only what this benchmark started
        await proc.wait()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux ``/proc``): a per-read cost that the
    neighbours on a shared machine do not inflate the way they inflate wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _probe(server: asyncio.subprocess.Process) -> dict[str, float]:
    """The server's event-loop lag and GC pauses since the last call (see :class:`LoopProbe`)."""
    assert server.stdin is not None
    assert server.stdout is not None
    server.stdin.write(b"stats\n")
    await server.stdin.drain()
    return dict(json.loads(await asyncio.wait_for(server.stdout.readline(), 30)))


async def _load(url: str, blob: Path, reads: int, server: asyncio.subprocess.Process) -> dict[str, float]:
    """One load-generator process against ``url``: reads/s, p50 and p99 in ms, server CPU per read,
    and the server's loop lag and GC pauses during the round."""
    server_pid = server.pid
    await _probe(server)  # start the server's figures afresh
    cpu = _cpu_seconds(server_pid)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.rangeload",
        "client",
        f"{url}/v1/shares/{DS}/0",
        str(blob),
        str(SPAN),
        str(reads),
        str(CONCURRENCY),
        stdout=asyncio.subprocess.PIPE,
    )
    raw, _ = await proc.communicate()
    cpu = _cpu_seconds(server_pid) - cpu
    probed = await _probe(server)
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed against {url}")
    result = json.loads(raw)
    lat = sorted(result["latencies"])
    return {
        "per_s": len(lat) / result["elapsed"],
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[int(0.99 * (len(lat) - 1))] * 1000,
        "cpu_us": cpu / len(lat) * 1e6,
        "client_cpu_us": result["cpu"] / len(lat) * 1e6,
        **probed,
    }


_PROBED = ("lag_p99_ms", "lag_max_ms", "gc_pauses", "gc_max_ms")


async def served(data: bytes, tmp: Path, reads: int, *, whole: bool, ranges: bool) -> dict[str, float]:
    """Serving, node vs bare aiohttp, each its own process: whole-share downloads (``whole``) and
    16 KiB range reads at 200 concurrent clients (``ranges``)."""
    blob = tmp / "range.blob"
    blob.write_bytes(data)
    capacity = str(2 * len(data))
    node, node_url = await _spawn("-m", "bench.node", "--serve-node", str(tmp / "range-node"), capacity)
    bare, bare_url = await _spawn("-m", "bench.rangeload", "bare", str(blob))
    nodes = {"node": (node_url, node)}
    if whole:  # a second node checking every block of every download
        checking = await _spawn("-m", "bench.node", "--serve-node", str(tmp / "checking-node"), capacity, "0")
        nodes["checking"] = checking[1], checking[0]
    try:
        async with NodeClient() as client:
            for url, _ in nodes.values():
                order = StorageOrder.new(
                    node=(await client.health(url))["address"],
                    dataset=DS,
                    index=0,
                    share_root=merkle.root(data, 1024, 2),
                    size=len(data),
                    leaf_size=1024,
                    block_size=256 * 1024,
                )
                await client.put_share(url, order, Account.create(), body(data))
        out: dict[str, float] = {}
        if whole:
            out.update(await downloads({"bare": (bare_url, bare), **nodes}, len(data)))
        if not ranges:
            return out
        best: dict[str, dict[str, float]] = {}
        cpu: dict[str, list[float]] = {}  # server CPU per read, every round after the warm-up
        for r in range(ROUNDS + 1):  # round 0 warms both (page cache, the node's verified digests)
            for name, url, server in (("bare", bare_url, bare), ("node", node_url, node)):
                got = await _load(url, blob, reads, server)
                cpu.setdefault(name, []).append(got["cpu_us"])
                if r == 0:
                    cpu[name].clear()
                elif got["per_s"] > best.get(name, {"per_s": 0.0})["per_s"]:
                    best[name] = got
    finally:
        await asyncio.gather(_stop(bare), *(_stop(proc) for _, proc in nodes.values()))
    return {
        **out,
        "range_reads_per_s": round(best["node"]["per_s"]),
        "range_p50_ms": round(best["node"]["p50_ms"], 2),
        "range_p99_ms": round(best["node"]["p99_ms"], 2),
        "bare_range_reads_per_s": round(best["bare"]["per_s"]),
        "bare_range_p50_ms": round(best["bare"]["p50_ms"], 2),
        "bare_range_p99_ms": round(best["bare"]["p99_ms"], 2),
        "range_ratio": round(best["node"]["per_s"] / best["bare"]["per_s"], 3),
        "range_p99_ratio": round(best["node"]["p99_ms"] / best["bare"]["p99_ms"], 3),
        **{f"{who}_{k}": round(best[who][k], 2) for who in ("node", "bare") for k in _PROBED},
        "range_cpu_us": round(min(cpu["node"]), 1),
        "bare_range_cpu_us": round(min(cpu["bare"]), 1),
        "range_cpu_ratio": round(min(cpu["bare"]) / min(cpu["node"]), 3),
        "load_generator_cpu_us": round(best["node"]["client_cpu_us"], 1),
    }


async def serve_node(home: Path, capacity: int, reverify_after: float | None = None) -> None:
    """A storage node of its own process for the range benchmark; prints its URL, stops at stdin EOF."""
    config = NodeConfig(home=home, capacity=capacity, summary_interval=0, gc_interval=0)
    if reverify_after is not None:
        config = dataclasses.replace(config, reverify_after=reverify_after)
    node = StorageNode(config)
    await node.start()
    freeze_startup_objects()  # as `datasov node run` does
    print(node.url, flush=True)
    probe = LoopProbe()
    probe.start()
    try:
        await wait_for_stdin_eof(probe)
    finally:
        await probe.stop()
        await node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve-node", nargs="+", metavar="HOME CAPACITY [REVERIFY_AFTER]", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="64 MiB share, 6,000 range reads per round")
    parser.add_argument("--ranges", action="store_true", help="only the range reads")
    parser.add_argument("--transfers", action="store_true", help="only the whole-share upload and download")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    if args.serve_node:
        home, capacity = Path(args.serve_node[0]), int(args.serve_node[1])
        reverify = float(args.serve_node[2]) if len(args.serve_node) > 2 else None
        profile = os.environ.get("DATASOV_BENCH_PROFILE")  # a path: the node's cProfile stats go there
        if profile:
            import cProfile

            cProfile.runctx("asyncio.run(serve_node(home, capacity, reverify))", globals(), locals(), profile)
        else:
            asyncio.run(serve_node(home, capacity, reverify))
        return
    size, reads = (64 * MiB, 6000) if args.quick else (512 * MiB, 30000)
    out = asyncio.run(run(size, reads, only_ranges=args.ranges, no_ranges=args.transfers))
    print(f"node benchmark on loopback, {out['share_mib']:.0f} MiB share")
    if "upload_mbps" in out:
        print(
            f"  upload   {out['upload_mbps']:8.1f} MB/s = {out['upload_ratio']:.2f}x bare aiohttp "
            f"({out['bare_upload_mbps']})"
        )
        print(
            f"  download {out['download_mbps']:8.1f} MB/s = {out['download_ratio']:.2f}x bare aiohttp FileResponse "
            f"({out['bare_download_mbps']}), each its own process (limit 0.8), blocks verified at rest\n"
            f"           {out['checked_download_mbps']:8.1f} MB/s = {out['checked_download_ratio']:.2f}x bare with "
            f"every block checked (reverify_after 0: after a restart, or a record past its age)\n"
            f"    server CPU per MiB: node {out['download_cpu_ms_per_mib']} ms, checking every block "
            f"{out['checked_download_cpu_ms_per_mib']} ms, bare {out['bare_download_cpu_ms_per_mib']} ms "
            f"(/proc counts in ticks of {1000 / os.sysconf('SC_CLK_TCK') / out['share_mib']:.2f} ms per MiB here)"
        )
    if "range_reads_per_s" not in out:
        if args.json:
            print(json.dumps(out, sort_keys=True))
        return
    print(
        f"  16 KiB range reads, {CONCURRENCY} concurrent clients (node, bare and load generator each a process):\n"
        f"    node {out['range_reads_per_s']:8,.0f}/s = {out['range_ratio']:.2f}x bare aiohttp FileResponse "
        f"(limit 0.8), p50 {out['range_p50_ms']} ms, p99 {out['range_p99_ms']} ms = "
        f"{out['range_p99_ms'] / 50:.2f}x the 50 ms limit\n"
        f"    bare {out['bare_range_reads_per_s']:8,.0f}/s, p50 {out['bare_range_p50_ms']} ms, "
        f"p99 {out['bare_range_p99_ms']} ms (node p99 = {out['range_p99_ratio']:.2f}x bare's)\n"
        f"    event loop late by (p99 / max) node {out['node_lag_p99_ms']} / {out['node_lag_max_ms']} ms, "
        f"bare {out['bare_lag_p99_ms']} / {out['bare_lag_max_ms']} ms; GC pauses node {out['node_gc_pauses']:.0f} "
        f"(max {out['node_gc_max_ms']} ms), bare {out['bare_gc_pauses']:.0f} (max {out['bare_gc_max_ms']} ms)\n"
        f"    server CPU per read: node {out['range_cpu_us']} us, bare {out['bare_range_cpu_us']} us "
        f"(node = {out['range_cpu_ratio']:.2f}x bare's reads per CPU second); "
        f"load generator {out['load_generator_cpu_us']} us"
    )
    if args.json:
        print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
