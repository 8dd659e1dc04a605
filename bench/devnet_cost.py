"""What a test devnet costs the machine: CPU-seconds to start and cores kept busy while idle, for the
12-process ``datasov devnet up`` (tests/cli) and the ``--in-process`` one (tests/test_cli_market.py),
measured one after the other in the same run; prints each figure and the ratio process / in-process.

    python -m bench.devnet_cost --quick     (10 s idle window; default 30 s)

Everything started here is stopped by its PID; nothing else is touched.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil


def _cpu(root: psutil.Process) -> tuple[float, int]:
    procs = [root, *root.children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total, len(procs)


def measure(extra: list[str], idle: float) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="datasov-devnet-cost-"))
    cmd = [sys.executable, "-m", "datasov", "devnet", "up", "--home", str(home), "--rpc-port", "0", "--json"]
    cmd += ["--block-time", "0.5", *extra]
    started = time.monotonic()
    with (home / "devnet.log").open("w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the description ends with "}" once everything is up
            if line.rstrip() == "}":
                break
        up = time.monotonic() - started
        root = psutil.Process(proc.pid)
        at_up, count = _cpu(root)
        time.sleep(idle)
        after, _ = _cpu(root)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    return {"processes": count, "start_wall_s": up, "start_cpu_s": at_up, "idle_cores": (after - at_up) / idle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s idle window instead of 30 s")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    idle = 10.0 if args.quick else 30.0
    procs = measure([], idle)
    inproc = measure(["--in-process"], idle)
    ratios = {k: procs[k] / inproc[k] for k in ("processes", "start_cpu_s", "idle_cores") if inproc[k]}
    if args.json:
        print(json.dumps({"processes": procs, "in_process": inproc, "ratio": ratios}, indent=2))
        return
    for name, m in (("12 node processes", procs), ("--in-process", inproc)):
        print(
            f"{name:>18}: {m['processes']:2d} process(es), start {m['start_cpu_s']:.1f} CPU-s "
            f"({m['start_wall_s']:.1f} s wall), idle {m['idle_cores']:.3f} cores"
        )
    print("             ratio: " + ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
