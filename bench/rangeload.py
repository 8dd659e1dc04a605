"""A lean HTTP/1.1 range-read load generator, and the bare aiohttp file server it is compared on.

    python -m bench.rangeload client URL_PATH BLOB SPAN READS CONCURRENCY
    python -m bench.rangeload bare BLOB

``client``: ``CONCURRENCY`` keep-alive connections, each sending one ``Range: bytes=a-b`` GET at a
time for ``SPAN`` bytes at a random offset of ``BLOB`` (a local copy of what the server holds), until
``READS`` reads are done; every body is checked against the blob. Prints one JSON line: the
latencies (seconds) and the elapsed time. Raw asyncio streams rather than aiohttp's client: the load
generator must cost less than the servers it measures, or the ratio measures the load generator.

``bare``: an aiohttp application answering ``GET /v1/shares/{dataset}/{index}`` with
``web.FileResponse(BLOB)`` (aiohttp's own Range handling and sendfile), no checks, no access log,
and ``PUT /v1/pending/{deal}/{index}`` by writing the body to a file next to BLOB (1 MiB reads, the
writes in a worker thread, fsync at the end, then the file is removed: the upload benchmark's
peer). Prints its URL on one line, then serves until its stdin closes.

Both servers of the benchmark (this one and the node, ``bench.node --serve-node``) run a
:class:`LoopProbe` and answer a ``stats`` line on stdin with one JSON line: how late their event
loop woke up (p50, p99, max of a timer every 5 ms) and the garbage collector's pauses since the
last ``stats``: where a server's latency tail comes from, measured inside it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web


async def client(url: str, data: bytes, span: int, reads: int, concurrency: int) -> dict[str, object]:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    offsets = [rng.randrange(0, len(data) - span) for _ in range(reads)]
    latencies: list[float] = []
    errors: list[str] = []
    todo = iter(offsets)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for offset in todo:
                request = (
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nRange: bytes={offset}-{offset + span - 1}\r\n\r\n"
                ).encode()
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = head[9:12]
                length = -1
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if status != b"206" or body != data[offset : offset + span]:
                    errors.append(f"{status!r} {length} at {offset}")
                    return
        finally:
            writer.close()

    t, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
    if errors:
        raise SystemExit(f"wrong answers: {errors[:3]}")
    return {"latencies": latencies, "elapsed": elapsed, "cpu": cpu}


async def bare(blob: Path) -> None:
    async def get(request: web.Request) -> web.FileResponse:
        return web.FileResponse(blob)

    async def put(request: web.Request) -> web.Response:
        target = blob.with_name(f"upload-{request.match_info['deal']}-{request.match_info['index']}.blob")
        f = await asyncio.to_thread(target.open, "wb")
        try:
            async for chunk in request.content.iter_chunked(1 << 20):
                await asyncio.to_thread(f.write, chunk)
            await asyncio.to_thread(os.fsync, f.fileno())
        finally:
            f.close()
            target.unlink()
        return web.json_response({"state": "written"}, status=202)

    app = web.Application()
    app.router.add_get("/v1/shares/{dataset}/{index}", get)
    app.router.add_put("/v1/pending/{deal}/{index}", put)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"http://127.0.0.1:{port}", flush=True)
    probe = LoopProbe()
    probe.start()
    await wait_for_stdin_eof(probe)
    await probe.stop()
    await runner.cleanup()


class LoopProbe:
    """Event-loop lag (how late a 5 ms timer fires) and garbage-collector pauses of this process."""

    INTERVAL = 0.005

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.gc_pauses: list[float] = []
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append(time.perf_counter() - self._gc_started)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.INTERVAL
            await asyncio.sleep(self.INTERVAL)
            self.lags.append(loop.time() - due)

    def take(self) -> dict[str, float]:
        """Figures since the last call (in ms), then start again."""
        lags, self.lags = sorted(self.lags) or [0.0], []
        pauses, self.gc_pauses = self.gc_pauses, []
        return {
            "lag_p50_ms": lags[len(lags) // 2] * 1000,
            "lag_p99_ms": lags[int(0.99 * (len(lags) - 1))] * 1000,
            "lag_max_ms": lags[-1] * 1000,
            "gc_pauses": len(pauses),
            "gc_total_ms": sum(pauses) * 1000,
            "gc_max_ms": max(pauses, default=0.0) * 1000,
        }


async def wait_for_stdin_eof(probe: LoopProbe | None = None) -> None:
    """Serve until the parent closes our stdin (it ends us by PID if that fails); a ``stats`` line
    is answered with the probe's figures on one JSON line."""
    while line := await asyncio.to_thread(sys.stdin.readline):
        if line.strip() == "stats" and probe is not None:
            print(json.dumps(probe.take()), flush=True)


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "client":
        url, blob, span, reads, conc = args
        print(json.dumps(asyncio.run(client(url, Path(blob).read_bytes(), int(span), int(reads), int(conc)))))
    elif mode == "bare":
        asyncio.run(bare(Path(args[0])))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
