"""The CPU a publish and a fetch cannot avoid on this machine: each byte-moving step alone, measured.

    python -m bench.publish_floor [--size MiB] [-k K] [-n N] [--quick]

What every publish of SIZE MiB at K-of-N must do to its bytes, and every whole fetch of it, each
step timed alone in this process (CPU = user + system from ``getrusage``, all threads) or in a
child (``wait4``):

- publish, client: encrypt (AES-256-GCM, the STREAM construction), erasure-code and hash every
  share (``erasure.pipeline.encode`` into null sinks, its own thread pool), and, apart, each of
  those alone on one thread (AES-GCM, the codec, the Merkle roots of the N/K x SIZE share bytes);
- publish, the wire: N/K x SIZE sent over loopback TCP in 256 KiB writes and received with
  ``recv_into`` (both sides' kernel work: on loopback the receive runs in the sender's ``send``);
- publish, the nodes: the same share bytes written to the page cache (N files, then removed
  unsynced) and hashed into block roots, what a node does per byte received;
- fetch: K shares (SIZE bytes) ``sendfile``d over loopback and received, hashed, decrypted and
  written (``os.pwrite``) into one file;
- start-up: ``python -c pass``, and a child importing what ``datasov publish`` and ``datasov
  fetch`` import (their command modules: ``datasov publish --help``, ``datasov fetch --help``).

Prints each step's CPU-seconds and wall seconds, the sums (the irreducible CPU of a publish and of a
fetch: the per-byte work, plus one interpreter start), the wall time that CPU needs on this
machine's cores (sum / cores), and, with ``--measured-publish`` / ``--measured-fetch`` (the total
CPU-seconds of every process in one CLI run, from ``bench.publish_profile`` / ``bench.fetch_profile``),
the ratio of what is spent to this floor. The machine is shared: the figures are per step, measured
in the same run; read their ratios.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from erasure import merkle, pipeline, stream
from erasure.codec import get_codec
from storage_node.store.direct import ShareWriter

MiB = 1 << 20
BLOCK = pipeline.DEFAULT_BLOCK_SIZE
LEAF = merkle.DEFAULT_LEAF_SIZE
POOL = os.urandom(16 * MiB)


def chunks(size: int, piece: int = MiB) -> Iterator[memoryview]:
    view = memoryview(POOL)
    done = 0
    while done < size:
        take = min(piece, size - done)
        start = done % len(POOL)
        take = min(take, len(POOL) - start)
        yield view[start : start + take]
        done += take


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(step: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of ``step()``."""
    c, t = cpu(), time.perf_counter()
    step()
    return cpu() - c, time.perf_counter() - t


class NullSink:
    def write(self, data: bytes, /) -> object:
        return len(data)


def encode_all(size: int, k: int, n: int, threads: int | None) -> None:
    layout = pipeline.Layout(codec=pipeline.preferred_codec(k, n), k=k, n=n)
    pipeline.encode(chunks(size), [NullSink() for _ in range(n)], key=os.urandom(32), layout=layout, threads=threads)


def aes_gcm(size: int) -> None:
    _, messages = stream.encrypt_stream(os.urandom(32), chunks(size), scheme=stream.choose_scheme())
    for _ in messages:
        pass


def code(size: int, k: int, n: int) -> None:
    codec = get_codec(pipeline.preferred_codec(k, n), k, n)
    segment = k * BLOCK
    for piece in chunks(size, segment):
        if len(piece) == segment:
            codec.encode(bytes(piece))


def hash_blocks(size: int) -> None:
    for piece in chunks(size, 4 * MiB):
        merkle.block_roots(piece, BLOCK, LEAF)


def _receiver(server: socket.socket, total: int, got: list[int]) -> None:
    with server:
        conn, _ = server.accept()
    with conn:
        buf = bytearray(BLOCK * 4)
        view = memoryview(buf)
        done = 0
        while done < total:
            r = conn.recv_into(view)
            if not r:
                break
            done += r
        got.append(done)


def _pair(total: int) -> tuple[socket.socket, threading.Thread, list[int]]:
    server = socket.create_server(("127.0.0.1", 0))
    got: list[int] = []
    thread = threading.Thread(target=_receiver, args=(server, total, got))
    thread.start()
    client = socket.create_connection(server.getsockname())
    return client, thread, got


def loopback(total: int) -> None:
    """``total`` bytes sent in BLOCK writes over loopback TCP and received (both sides here)."""
    client, thread, got = _pair(total)
    with client:
        for piece in chunks(total, BLOCK):
            client.sendall(piece)
    thread.join()
    assert got == [total], got


def node_receive(total: int, n: int, folder: Path, how: str) -> None:
    """What n nodes do per byte received: write and hash into block roots, then fsync. ``how``:
    "reused" (each file removed at once: its page-cache pages reused by the next, the cheapest case),
    "kept" (files kept until the step ends, as a node keeps its shares: the page cache grows) or
    "direct" (kept, written past the page cache with ``O_DIRECT`` as the nodes now write)."""
    per = total // n
    kept = []
    for i in range(n):
        path = folder / f"{i}.share"
        writer = ShareWriter(path) if how == "direct" else path.open("wb")
        try:
            for piece in chunks(per, 4 * MiB):
                writer.write(piece)
                merkle.block_roots(piece, BLOCK, LEAF)
            if isinstance(writer, ShareWriter):
                writer.finish()
            else:
                writer.flush()
            os.fsync(writer.fileno())
        finally:
            writer.close()
        if how == "reused":
            path.unlink()
        else:
            kept.append(path)
    for path in kept:
        path.unlink()


def fetch_bytes(size: int, k: int, folder: Path) -> tuple[float, float]:
    """k share files sendfile'd over loopback; received, hashed, decrypted and written to one file.
    Returns (CPU, wall) of the transfer and the client's per-byte work (files made beforehand)."""
    per = size // k
    files = []
    for i in range(k):
        path = folder / f"share{i}"
        with path.open("wb") as f:
            for piece in chunks(per, 4 * MiB):
                f.write(piece)
        files.append(path)
    scheme = stream.choose_scheme()
    key, header = os.urandom(32), stream.new_header()
    cipher = stream.StreamCipher(key, header, scheme=scheme)
    message = stream.MESSAGE_SIZE
    sealed = [cipher.seal(i, POOL[i * message : (i + 1) * message], last=False) for i in range(4)]
    out = folder / "out.bin"

    def run() -> None:
        client, thread, got = _pair(per * k)
        out.touch()
        with client:
            for path in files:
                with path.open("rb") as f:
                    os.sendfile(client.fileno(), f.fileno(), 0, per)
        thread.join()
        assert got == [per * k], got
        with out.open("r+b") as sink:  # the client's work on the bytes: verify, open, write in place
            fd = sink.fileno()
            offset = 0
            for piece in chunks(per * k, 4 * MiB):
                merkle.block_roots(piece, BLOCK, LEAF)
                for j in range(len(piece) // (message + stream.TAG_SIZE)):
                    plain = cipher.open(j % 4, sealed[j % 4], last=False)
                    os.pwrite(fd, plain, offset)
                    offset += len(plain)

    result = measure(run)
    for path in [*files, out]:
        path.unlink(missing_ok=True)
    return result


def child_cpu(*args: str) -> tuple[float, float]:
    """(CPU, wall) of ``python ARGS`` to its end, from ``wait4``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="MiB (default 256)")
    parser.add_argument("-k", type=int, default=3)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="64 MiB")
    parser.add_argument("--measured-publish", type=float, default=None, help="CPU-s of every process in a publish")
    parser.add_argument("--measured-fetch", type=float, default=None, help="CPU-s of every process in a fetch")
    args = parser.parse_args()
    size = (64 if args.quick else args.size) * MiB
    k, n = args.k, args.n
    shares = pipeline.planned_share_size(size, pipeline.Layout(k=k, n=n)) * n
    cores = os.cpu_count() or 1
    rows: list[tuple[str, str, float, float]] = []

    def row(side: str, what: str, got: tuple[float, float]) -> None:
        rows.append((side, what, *got))
        print(f"  {side:<8} {what:<66} CPU {got[0]:6.2f} s  wall {got[1]:6.2f} s", flush=True)

    print(f"# {size // MiB} MiB, {k}-of-{n}: {shares / MiB:.0f} MiB of shares; {cores} cores")
    with tempfile.TemporaryDirectory(prefix="datasov-bench-floor-", dir=os.environ.get("TMPDIR")) as tmp_s:
        tmp = Path(tmp_s)
        row("startup", "python -c pass", child_cpu("-c", "pass"))
        row(
            "startup",
            "python -m datasov publish --help (the command's imports)",
            child_cpu("-m", "datasov", "publish", "--help"),
        )
        row(
            "startup",
            "python -m datasov fetch --help (the command's imports)",
            child_cpu("-m", "datasov", "fetch", "--help"),
        )
        row(
            "publish",
            "client: encrypt + code + hash, pipeline.encode (its threads)",
            measure(lambda: encode_all(size, k, n, None)),
        )
        row("(parts)", "  AES-256-GCM of the input, one thread", measure(lambda: aes_gcm(size)))
        row("(parts)", "  erasure code the input, one thread", measure(lambda: code(size, k, n)))
        row("(parts)", "  Merkle block roots of the shares, one thread", measure(lambda: hash_blocks(shares)))
        row("publish", "wire: the shares over loopback TCP, both sides", measure(lambda: loopback(shares)))
        for how, what in (
            ("reused", "nodes: the shares written, hashed, fsynced; page cache reused"),
            ("kept", "  the same, files kept (the page cache grows, as a node's does)"),
            ("direct", "  the same, files kept, written with O_DIRECT (ShareWriter)"),
        ):
            side = "publish" if how == "direct" else "(nodes)"
            row(side, what, measure(functools.partial(node_receive, shares, n, tmp, how)))
        with ThreadPoolExecutor(1) as pool:  # a fresh thread: the pool of encode is gone
            got = pool.submit(fetch_bytes, size, k, tmp).result()
        row("fetch", "k shares sendfile'd over loopback, hashed, opened, pwritten", got)
    startup = next(r for r in rows if r[1] == "python -c pass")[2]
    pub = sum(r[2] for r in rows if r[0] == "publish") + startup
    fetch = sum(r[2] for r in rows if r[0] == "fetch") + startup
    print(
        f"# irreducible CPU, publish: {pub:.2f} s (per-byte work + one interpreter start)"
        f" -> {pub / cores:.2f} s wall on {cores} cores"
    )
    print(f"# irreducible CPU, fetch:   {fetch:.2f} s -> {fetch / cores:.2f} s wall on {cores} cores")
    if args.measured_publish:
        print(f"# measured publish CPU {args.measured_publish:.2f} s = {args.measured_publish / pub:.2f}x this floor")
    if args.measured_fetch:
        print(f"# measured fetch CPU {args.measured_fetch:.2f} s = {args.measured_fetch / fetch:.2f}x this floor")
    print(f"# load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {cores} cores (machine shared)")


if __name__ == "__main__":
    main()
