"""Where a CLI publish's time goes: a devnet with node processes, ``datasov publish --json`` timed by phase.

    python -m bench.publish_profile [--size MiB [MiB...]] [-k K] [-n N] [--nodes NODES] [--rounds R] [--idle S]
                                    [--profile OUT.prof] [--importtime OUT.txt] [--peer-tree DIR]
                                    [--node-profile DIR] [--perf-node OUT.data]

Sets up as :mod:`bench.peers` does (``datasov devnet up``, each node its own process, an owner home),
then runs ``datasov publish`` ROUNDS times on fresh random files and prints, per round: wall time,
the client's own CPU (user + system, from ``wait4``), the phases ``publish --json`` reports, and the
CPU the node processes and the devnet (chain) process spent meanwhile (``/proc/PID/stat`` before and
after). ``--profile`` runs the last round under cProfile (main thread only: the encoder's threads
are not in it); ``--importtime`` runs ``-X importtime`` once more and keeps its report.
``--peer-tree DIR``: each round also publishes with the code in DIR first on ``PYTHONPATH`` and
prints the ratio of the two measured in the same run. ``--node-profile DIR``: cProfile of the first
node process (its event loop) during the last round, into DIR (:mod:`bench.node_profile`);
``--perf-node OUT.data``: ``perf record -g`` of that node during the last round (native frames:
interpreter, hashing, copies, kernel). ``--peer-net DIR``: a second devnet running the code in DIR
(chain, node processes and client), started beside ours; each round publishes on ours, then on
theirs with their client, and prints the ratios of wall time and of the nodes', chain's and
client's CPU measured in the same run (for node-side changes, which ``--peer-tree`` cannot show).
Everything started is stopped by PID.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import node_profile
from .cliproc import Devnet, Timed, run_timed
from .peers import MiB, random_file

TICK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def publish_once(
    devnet: Devnet,
    owner: Path,
    src: Path,
    k: int,
    n: int,
    *,
    env: dict[str, str] | None = None,
    pre: tuple[str, ...] = (),
    cwd: Path = ROOT,
) -> tuple[Timed, dict[str, float]]:
    """One publish; its run and the CPU seconds each other process spent meanwhile."""
    pids = running(devnet)
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    got = run_timed(
        "publish", str(src), "--home", str(owner), "-k", str(k), "-n", str(n), "--json", env=env, pre=pre, cwd=cwd
    )
    return got, {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}


def running(devnet: Devnet) -> dict[str, int]:
    """Name -> PID of each node process and of the devnet (chain) process."""
    pids = {f"node{i}": pid for i, pid in enumerate(devnet.described.get("pids", {}).values()) if pid}
    pids["devnet"] = devnet.proc.pid
    return pids


def idle_cpu(devnet: Devnet, seconds: float) -> None:
    """CPU the nodes and the devnet spend with nothing asked of them (their background loops)."""
    pids = running(devnet)
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    spent = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    nodes = sum(v for k, v in spent.items() if k.startswith("node"))
    print(
        f"# idle {seconds:.0f} s: nodes CPU {nodes:.2f} s ({nodes / seconds:.3f} CPU-s per s, all nodes),"
        f" devnet/chain CPU {spent['devnet']:.2f} s ({spent['devnet'] / seconds:.3f} per s)"
    )


def report(label: str, got: Timed, others: dict[str, float], size_mib: float) -> None:
    seconds = json.loads(got.stdout).get("seconds", {})
    nodes = sum(v for k, v in others.items() if k.startswith("node"))
    print(
        f"# {label}: publish {got.seconds:.2f} s ({size_mib / got.seconds:.1f} MiB/s),"
        f" peak RSS {got.peak_rss_mib:.0f} MiB;"
        f" client CPU {got.cpu_user:.2f} user + {got.cpu_sys:.2f} sys; nodes CPU {nodes:.2f} s"
        f" (max one {max((v for k, v in others.items() if k.startswith('node')), default=0):.2f});"
        f" devnet/chain CPU {others.get('devnet', 0):.2f} s"
    )
    print("#   phases (s): " + ", ".join(f"{k} {v}" for k, v in seconds.items()))
    print(floor(got, others))


def floor(got: Timed, others: dict[str, float]) -> str:
    """Every process's CPU in one run, and the wall time 2 cores cannot beat: (total CPU-s) / cores."""
    client = got.cpu_user + got.cpu_sys
    total = client + sum(others.values())
    cores = os.cpu_count() or 1
    per_node = " ".join(f"{v:.2f}" for k, v in sorted(others.items()) if k.startswith("node"))
    return (
        f"#   CPU-s: client {client:.2f}, devnet/chain {others.get('devnet', 0):.2f}, nodes [{per_node}];"
        f" total {total:.2f} -> floor {total / cores:.2f} s on {cores} cores;"
        f" wall/floor {got.seconds / max(1e-9, total / cores):.2f}x"
    )


def _watch_node(
    devnet: Devnet, profile: Path | None, perf: Path | None
) -> tuple[int, subprocess.Popen[bytes] | None] | None:
    """Start cProfile and/or ``perf record`` of the first node process."""
    if profile is None and perf is None:
        return None
    pid = next(v for k, v in running(devnet).items() if k.startswith("node"))
    if profile is not None:
        node_profile.start(pid)
    recorder = None
    if perf is not None:
        cmd = ["perf", "record", "-q", "-g", "-F", "499", "-p", str(pid), "-o", str(perf)]
        recorder = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return pid, recorder


def _unwatch_node(pid: int, recorder: subprocess.Popen[bytes] | None, profile: Path | None) -> None:
    if recorder is not None:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)
        print("# perf record of node 0 written")
    if profile is not None:
        path = node_profile.stop(pid, profile.resolve())
        print(f"# cProfile of node 0 (pid {pid}): {path}")


def _ratios(ours: Timed, our_cpu: dict[str, float], theirs: Timed, their_cpu: dict[str, float]) -> None:
    def nodes(cpu: dict[str, float]) -> float:
        return sum(v for k, v in cpu.items() if k.startswith("node"))

    client = (ours.cpu_user + ours.cpu_sys) / max(1e-9, theirs.cpu_user + theirs.cpu_sys)
    print(
        f"#   ours/peer (same run): wall {ours.seconds / theirs.seconds:.2f}x,"
        f" nodes CPU {nodes(our_cpu) / max(1e-9, nodes(their_cpu)):.2f}x,"
        f" chain CPU {our_cpu.get('devnet', 0) / max(1e-9, their_cpu.get('devnet', 0)):.2f}x,"
        f" client CPU {client:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs="+", default=[256], help="MiB, one file each (default 256)")
    parser.add_argument("-k", type=int, default=3)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=None, help="storage nodes (default: n)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=float, default=0, help="first measure the nodes' CPU idle for this long (s)")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output of the last round")
    parser.add_argument("--importtime", type=Path, default=None, help="-X importtime report of one more round")
    parser.add_argument("--peer-tree", type=Path, default=None, help="other code (git archive BASE | tar -x -C DIR)")
    parser.add_argument("--node-profile", type=Path, default=None, help="cProfile of node 0 in the last round, DIR")
    parser.add_argument("--perf-node", type=Path, default=None, help="perf record -g of node 0 in the last round")
    parser.add_argument("--peer-net", type=Path, default=None, help="a second devnet running the code in DIR")
    args = parser.parse_args()
    nodes = args.nodes or args.n
    with tempfile.TemporaryDirectory(prefix="datasov-bench-pubprof-", dir=os.environ.get("TMPDIR")) as tmp_s:
        tmp = Path(tmp_s)
        t = time.perf_counter()
        if args.node_profile is not None:
            os.environ.update(node_profile.install(tmp / "hook", args.node_profile.resolve()))
        peer_tree = args.peer_net.resolve() if args.peer_net is not None else None
        with concurrent.futures.ThreadPoolExecutor(2) as pool:  # both devnets come up together
            ours = pool.submit(Devnet, tmp / "net", nodes=nodes)
            peer_up = pool.submit(Devnet, tmp / "peer-net", nodes=nodes, cwd=peer_tree) if peer_tree else None
            started = [f for f in (ours, peer_up) if f is not None]
            concurrent.futures.wait(started)
            failed = [f for f in started if f.exception() is not None]
            if failed:  # one did not come up: stop the other before saying why (nothing left running)
                for f in started:
                    if f.exception() is None:
                        f.result().stop()
                raise failed[0].exception()  # type: ignore[misc]
            devnet = ours.result()
            peer_net = peer_up.result() if peer_up is not None else None
        try:
            owner = devnet.init_home(tmp / "owner", 1)
            peer_owner = peer_net.init_home(tmp / "peer-owner", 1) if peer_net is not None else None
            print(f"# devnet up ({nodes} node processes) in {time.perf_counter() - t:.1f} s")
            if args.idle:
                idle_cpu(devnet, args.idle)
            src = tmp / "in.bin"
            peaks: dict[int, float] = {}
            for size in args.size:
                for r in range(args.rounds):
                    random_file(src, size * MiB)
                    prof = args.profile if args.profile is not None and r == args.rounds - 1 else None
                    pre = ("-m", "cProfile", "-o", str(prof)) if prof is not None else ()
                    last = r == args.rounds - 1
                    watched = _watch_node(devnet, args.node_profile, args.perf_node) if last else None
                    got, others = publish_once(devnet, owner, src, args.k, args.n, pre=pre)
                    if watched is not None:
                        _unwatch_node(*watched, args.node_profile)
                    report(f"{size} MiB round {r + 1}{' (cProfile)' if prof else ''}", got, others, size)
                    peaks[size] = max(peaks.get(size, 0.0), got.peak_rss_mib)
                    if peer_net is not None and peer_owner is not None and peer_tree is not None:
                        random_file(src, size * MiB)
                        env = {"PYTHONPATH": str(peer_tree)}
                        theirs_got, theirs_cpu = publish_once(
                            peer_net, peer_owner, src, args.k, args.n, env=env, cwd=peer_tree
                        )
                        report(f"{size} MiB round {r + 1} peer net", theirs_got, theirs_cpu, size)
                        _ratios(got, others, theirs_got, theirs_cpu)
                    if args.peer_tree is not None:
                        random_file(src, size * MiB)
                        env = {"PYTHONPATH": str(args.peer_tree.resolve())}
                        tree = args.peer_tree.resolve()
                        theirs, others = publish_once(devnet, owner, src, args.k, args.n, env=env, cwd=tree)
                        report(f"{size} MiB round {r + 1} peer tree", theirs, others, size)
                        print(f"#   ratio peer/ours {theirs.seconds / got.seconds:.2f}x (same run)")
            if len(peaks) > 1:
                low, high = min(peaks), max(peaks)
                print(
                    f"# peak RSS {low} MiB: {peaks[low]:.0f} MiB, {high} MiB: {peaks[high]:.0f} MiB"
                    f" (ratio {peaks[high] / peaks[low]:.2f}; limit 300 MiB: {peaks[high] / 300:.2f}x of it)"
                )
            if args.importtime is not None:
                random_file(src, args.size[-1] * MiB)
                got, _ = publish_once(devnet, owner, src, args.k, args.n, pre=("-X", "importtime"))
                args.importtime.write_text(got.stderr)
                print(f"# -X importtime report in {args.importtime}")
        finally:
            devnet.stop()
            if peer_net is not None:
                peer_net.stop()
    print(f"# load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
