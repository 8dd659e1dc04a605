"""Side by side with Tahoe-LAFS: ``tahoe put``/``tahoe get`` against ``datasov publish``/``datasov fetch``.

    python -m bench.peers [--quick] [--size MiB] [-k K] [-n N] [--nodes NODES] [--rounds R] [--json]
    make bench-peers

The peer: Tahoe-LAFS 1.20.0 (pinned, from PyPI, in a venv of its own: ``--tahoe-venv``), an
introducer, NODES storage nodes and a client node on loopback, each its own process, speaking
Foolscap (its best case), with shares.needed = K, shares.total = N, shares.happy = min(N, 7).
Ours: a ``datasov devnet up`` process (embedded chain) with NODES ``datasov node run`` processes
(``--in-process``: the nodes inside the devnet's process), an owner and a lab home, and the CLI
as a user runs it: ``publish -k K -n N`` timed; the lab buys a license and the owner's agent delivers
the key (not timed); ``fetch`` timed. Every round draws a fresh random file and runs tahoe put,
datasov publish, tahoe get, datasov fetch, in that order (so drift on a shared machine hits both);
each copy is checked against the input by SHA-256. Figures: best round of each; ratio = Tahoe's
time / ours (target >= 5x, issue 15). Everything started is stopped by PID.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from . import tahoe as tahoe_grid
from .cliproc import Devnet, run_timed

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[1]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def random_file(path: Path, size: int) -> str:
    with Path("/dev/urandom").open("rb") as src, path.open("wb") as dst:
        left = size
        while left:
            chunk = src.read(min(left, 4 * MiB))
            dst.write(chunk)
            left -= len(chunk)
    return sha256(path)


def node_capacity_mib(size_mib: float, k: int, rounds: int) -> int:
    """What each datasov node offers (``devnet up --capacity``): one share (size / k) of every
    round's file, plus a tenth and some slack, never under the default 1 GiB (a 3-of-10 share of
    4 GiB is 1.37 GiB: the default refuses it)."""
    return max(1024, math.ceil(rounds * size_mib / k * 1.1) + 64)


def fetch_path(stdout: str) -> str:
    """How the fetch went (its --json report): the shares it used, and any it excluded, hedged or
    waited on (then the segments not streamed were decoded from other holders)."""
    try:
        report = json.loads(stdout)
    except ValueError:
        return "(no JSON report)"
    report = report.get("report", report)
    parts = [f"shares used {report.get('shares_used')}"]
    parts += [f"{key} {report[key]}" for key in ("excluded", "hedged", "timeouts") if report.get(key)]
    return "; ".join(parts)


def datasov_round(devnet: Devnet, owner: Path, lab: Path, src: Path, out: Path, k: int, n: int) -> dict[str, Any]:
    published = run_timed(
        "publish", str(src), "--home", str(owner), "-k", str(k), "-n", str(n), "--price", "0", "--json"
    )
    dataset = str(json.loads(published.stdout)["dataset_id"])
    for _ in range(600):  # servable once its nodes accepted their shares on-chain (their provers do)
        try:
            run_timed("license", "buy", dataset, "--home", str(lab), "--wait", "0", "--yes", "--json")
            break
        except RuntimeError as err:
            if "no storage deal that can serve it" not in str(err):  # refusals.py's DatasetNotServable
                raise
            time.sleep(0.5)
    run_timed("agent", "run", "--once", "--no-repair", "--json", "--home", str(owner))
    fetched = run_timed("fetch", "--dataset", dataset, "-o", str(out), "--home", str(lab), "--json")
    return {"publish": published, "fetch": fetched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="16 MiB, one round")
    parser.add_argument("--size", type=int, default=256, help="MiB per file (default 256)")
    parser.add_argument("-k", type=int, default=3)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=None, help="storage nodes on each side (default: n)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tahoe-venv", type=Path, default=ROOT / ".venv-tahoe")
    parser.add_argument(
        "--node-processes",
        action="store_true",
        help="each datasov node in its own process (the default; kept for scripts)",
    )
    parser.add_argument("--in-process", action="store_true", help="the datasov nodes inside the devnet's process")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    size = (16 if args.quick else args.size) * MiB
    rounds = 1 if args.quick else args.rounds
    nodes = args.nodes or args.n
    # `devnet up` runs every node as its own process (as the Tahoe side does); --in-process is the old layout
    extra: tuple[str, ...] = ("--in-process",) if args.in_process else ()
    extra += ("--capacity", f"{node_capacity_mib(size / MiB, args.k, rounds)}MiB")
    tahoe = tahoe_grid.install(args.tahoe_venv)
    best: dict[str, float] = {}
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="datasov-bench-peers-") as tmp_s:
        tmp = Path(tmp_s)
        t = time.perf_counter()
        grid = tahoe_grid.Grid(tahoe, tmp / "tahoe", servers=nodes, k=args.k, happy=min(args.n, 7, nodes), n=args.n)
        print(f"# tahoe grid up ({nodes} storage nodes, Foolscap) in {time.perf_counter() - t:.1f} s")
        devnet = None
        try:
            t = time.perf_counter()
            devnet = Devnet(tmp / "net", nodes=nodes, extra=extra)
            owner = devnet.init_home(tmp / "owner", 1)
            lab = devnet.init_home(tmp / "lab", 2)
            print(f"# datasov devnet up ({nodes} nodes) in {time.perf_counter() - t:.1f} s")
            for r in range(rounds):
                src = tmp / "in.bin"
                want = random_file(src, size)
                t = time.perf_counter()
                cap = grid.put(src)
                put_s = time.perf_counter() - t
                ours = datasov_round(devnet, owner, lab, src, tmp / "ours.bin", args.k, args.n)
                t = time.perf_counter()
                grid.get(cap, tmp / "theirs.bin")
                get_s = time.perf_counter() - t
                for name, path in (("tahoe get", tmp / "theirs.bin"), ("datasov fetch", tmp / "ours.bin")):
                    if sha256(path) != want:
                        raise SystemExit(f"{name}: the copy differs from the input (SHA-256); no figures")
                    path.unlink()
                figures = {
                    "tahoe_put": put_s,
                    "tahoe_get": get_s,
                    "datasov_publish": ours["publish"].seconds,
                    "datasov_fetch": ours["fetch"].seconds,
                }
                rss["datasov_publish"] = max(rss.get("datasov_publish", 0), ours["publish"].peak_rss_mib)
                rss["datasov_fetch"] = max(rss.get("datasov_fetch", 0), ours["fetch"].peak_rss_mib)
                print(f"# round {r + 1}: " + ", ".join(f"{k} {v:.1f} s" for k, v in figures.items()) + "; sha256 ok")
                stages = json.loads(ours["publish"].stdout).get("seconds", {})
                print("#   datasov publish stages (s): " + ", ".join(f"{k} {v}" for k, v in stages.items()))
                print("#   datasov fetch: " + fetch_path(ours["fetch"].stdout))
                for key, value in figures.items():
                    best[key] = min(best.get(key, value), value)
        finally:
            if devnet is not None:
                devnet.stop()
            grid.stop()
    mib = size / MiB
    out: dict[str, float | int | str] = {"size_mib": mib, "k": args.k, "n": args.n, "nodes": nodes, "rounds": rounds}
    print(f"peers benchmark: {mib:.0f} MiB, {args.k}-of-{args.n}, {nodes} storage nodes each; best of {rounds}")
    for ours, theirs, label in (("datasov_publish", "tahoe_put", "publish"), ("datasov_fetch", "tahoe_get", "fetch")):
        ratio = best[theirs] / best[ours]
        out.update({f"{ours}_s": round(best[ours], 2), f"{theirs}_s": round(best[theirs], 2)})
        out[f"{label}_ratio"] = round(ratio, 3)
        out[f"{ours}_peak_rss_mib"] = round(rss[ours], 1)
        print(
            f"  {label:8} datasov {best[ours]:6.1f} s ({mib / best[ours]:6.1f} MiB/s, peak RSS {rss[ours]:.0f} MiB)"
            f" vs tahoe {best[theirs]:6.1f} s ({mib / best[theirs]:6.1f} MiB/s) = {ratio:4.2f}x (target 5x)"
        )
    if args.json:
        print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as err:
        raise SystemExit(f"{err.cmd}: exit {err.returncode}\n{(err.stderr or '')[-1500:]}") from err
