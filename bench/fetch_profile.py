"""Where a CLI fetch's time goes: a devnet with node processes, one dataset, ``datasov fetch`` timed by phase.

    python -m bench.fetch_profile [--size MiB [MiB...]] [-k K] [-n N] [--nodes NODES] [--rounds R] [--profile OUT.prof]
                                  [--peer-tree DIR]

Sets up as :mod:`bench.peers` does (``datasov devnet up`` with each node its own process, an owner
that publishes SIZE MiB of random bytes, a lab that buys a license, the owner's agent delivering the
key), then runs ``datasov fetch`` ROUNDS times with ``DATASOV_FETCH_PHASES`` set: the fetch writes
a wall-clock timestamp per phase (:mod:`market.fetch_phases`), printed here as a breakdown with each
phase's share of the whole; ``--profile`` runs the last round under cProfile. Each copy is checked
by SHA-256. ``--peer-tree DIR``: each round also fetches with the code in DIR (put first on
``PYTHONPATH``; e.g. the commit before a change), and prints the ratio of the two in the same run.
Everything started is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .cliproc import Devnet, run_timed
from .peers import MiB, random_file, sha256
from .publish_profile import cpu_seconds, floor, publish_once, report, running

ROOT = Path(__file__).resolve().parent.parent


def phases(path: Path, t0: float) -> list[tuple[str, float]]:
    """(phase, seconds since the process was started) from a phase file."""
    marks = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(m["phase"], m["t"] - t0) for m in marks]


def _one_size(
    args: argparse.Namespace, devnet: Devnet, tmp: Path, owner: Path, lab: Path, size: int, nodes: int
) -> None:
    """Publish SIZE MiB, buy it, have the key delivered, then fetch it ``args.rounds`` times."""
    src = tmp / "in.bin"
    want = random_file(src, size * MiB)
    pub, pub_cpu = publish_once(devnet, owner, src, args.k, args.n)
    dataset = str(json.loads(pub.stdout)["dataset_id"])
    report(f"publish {size} MiB {args.k}-of-{args.n} on {nodes} node processes", pub, pub_cpu, size)
    for _ in range(600):
        try:
            run_timed("license", "buy", dataset, "--home", str(lab), "--wait", "0", "--yes", "--json")
            break
        except RuntimeError as err:
            if "servable" not in str(err).lower() and "can serve" not in str(err).lower():
                raise
            time.sleep(0.5)
    for attempt in range(3):  # its missed-proof report may race the node's late proof (the call reverts): again
        try:
            run_timed("agent", "run", "--once", "--no-repair", "--json", "--home", str(owner))
            break
        except RuntimeError as err:
            if attempt == 2 or "reverted" not in str(err):
                raise
            print(f"# agent round {attempt + 1} failed (a report raced a proof), again")
    for r in range(args.rounds):
        out = tmp / "out.bin"
        marks = tmp / "phases.jsonl"
        marks.unlink(missing_ok=True)
        prof = args.profile if args.profile is not None and r == args.rounds - 1 else None
        pre = ("-m", "cProfile", "-o", str(prof)) if prof is not None else ()
        t0 = time.time()
        env = {"DATASOV_FETCH_PHASES": str(marks)}
        pids = running(devnet)
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        got = run_timed("fetch", "--dataset", dataset, "-o", str(out), "--home", str(lab), env=env, pre=pre, cwd=ROOT)
        spent = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        ok = sha256(out) == want
        out.unlink()
        mib_s = size / got.seconds
        print(
            f"# round {r + 1}{' (cProfile)' if prof else ''}: fetch {got.seconds:.2f} s, {mib_s:.1f} MiB/s, "
            f"CPU {got.cpu_user + got.cpu_sys:.2f} s, peak RSS {got.peak_rss_mib:.0f} MiB, "
            f"sha256 {'ok' if ok else 'DIFFERS'}"
        )
        last = 0.0
        for name, at in [*phases(marks, t0), ("exit", got.seconds)]:
            print(f"  {name:<28} at {at:6.2f} s  (+{at - last:5.2f} s, {100 * (at - last) / got.seconds:4.1f}%)")
            last = at
        print(floor(got, spent))
        if not ok:
            sys.exit("the fetched copy differs from the input")
        if args.peer_tree is not None:
            tree = args.peer_tree.resolve()  # `-m` puts the working directory first on sys.path: run in the tree
            fetch = ("fetch", "--dataset", dataset, "-o", str(out), "--home", str(lab))
            theirs = run_timed(*fetch, env={"PYTHONPATH": str(tree)}, cwd=tree)
            same = sha256(out) == want
            out.unlink()
            print(
                f"  peer tree {args.peer_tree}: fetch {theirs.seconds:.2f} s, "
                f"CPU {theirs.cpu_user + theirs.cpu_sys:.2f} s, peak RSS "
                f"{theirs.peak_rss_mib:.0f} MiB, sha256 {'ok' if same else 'DIFFERS'}; "
                f"ratio peer/ours {theirs.seconds / got.seconds:.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs="+", default=[256], help="MiB, one dataset each (default 256)")
    parser.add_argument("-k", type=int, default=3)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=None, help="storage nodes (default: n)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output of the last round")
    parser.add_argument(
        "--peer-tree",
        type=Path,
        default=None,
        help="a checkout of other code (e.g. `git archive BASE | tar -x -C DIR`): each round also fetches with it",
    )
    args = parser.parse_args()
    nodes = args.nodes or args.n
    with tempfile.TemporaryDirectory(prefix="datasov-bench-fetchprof-", dir=os.environ.get("TMPDIR")) as tmp_s:
        tmp = Path(tmp_s)
        devnet = Devnet(tmp / "net", nodes=nodes)
        try:
            owner = devnet.init_home(tmp / "owner", 1)
            lab = devnet.init_home(tmp / "lab", 2)
            for size in args.size:
                _one_size(args, devnet, tmp, owner, lab, size, nodes)
        finally:
            devnet.stop()
    print(f"# load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
