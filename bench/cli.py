"""CLI start-up benchmark: ``datasov`` commands as a user runs them, against limits and a bare interpreter.

    python -m bench.cli [--quick] [--json] [--nodes N] [--compare OLD_TREE]

- peer (measured first, same run): ``python -c pass``, the interpreter's own start-up;
- ``datasov --help`` and ``datasov --version``: limit 0.3 s;
- commands that only read the chain (``balance``, ``datasets``, ``show``, ``mine``, ``licenses``,
  ``pools``, ``nodes --no-probe``, ``nodes`` (with its parallel HTTP probe of every node),
  ``guardians show``) against a ``datasov devnet up`` process on loopback with ``--nodes`` nodes
  (default 12, each its own process, with bootstrap peers in the network config) and one small
  published dataset (3-of-6): limit 1 s.
- ``--devnet HOME``: measure against a ``datasov devnet up`` already running in HOME (``--nodes`` is
  then only what is printed) instead of starting one.
- ``--compare OLD_TREE``: each command also run by the code in OLD_TREE (a checkout or ``git
  archive`` of another commit, its built extension copied in), alternating with this tree's on the
  same devnet; the ratio new/old is printed (what to report on a loaded machine). They read over raw JSON-RPC
  (``Chain.reader``, :mod:`contracts.rpc`), so their floor is ``python -c 'import eth_abi'``;
  ``python -c 'import web3'`` is printed beside it, the floor they had while they read through web3
  (web3 imports eth_account, whose eth_keyfile imports py_ecc's BLS12-381 at module level).

Each figure is the median of several runs (the best one printed beside it) and its ratio to the limit
(< 1 is within it) and to the bare interpreter. On a shared machine the medians move with the load;
the ratios to ``python -c pass`` move less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .cliproc import Devnet, run_timed

HELP_LIMIT = 0.3
READ_LIMIT = 1.0


def bare_python(reps: int, code: str = "pass") -> list[float]:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t)
    return times


def timed(args: list[str], reps: int) -> tuple[list[float], float]:
    runs = [run_timed(*args) for _ in range(reps)]
    return [r.seconds for r in runs], max(r.peak_rss_mib for r in runs)


def cpu_run(args: list[str], root: Path) -> tuple[float, float, float]:
    """``datasov ARGS`` run by the code in ``root``: (wall s, CPU s (user + sys), peak RSS MiB)."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(root)}
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "datasov", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"datasov {' '.join(args)} ({root}): exit {proc.returncode}\n{err.decode()[-2000:]}")
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


Runs = tuple[list[float], list[float], float]  # wall times, CPU times, peak RSS MiB


def compare_runs(args: list[str], reps: int, trees: dict[str, Path]) -> dict[str, Runs]:
    """``args`` run ``reps`` times by each tree's code, the trees alternating (the same load for both):
    per tree, the wall times, the CPU times and the peak RSS."""
    walls: dict[str, list[float]] = {tree: [] for tree in trees}
    cpus: dict[str, list[float]] = {tree: [] for tree in trees}
    rss: dict[str, float] = dict.fromkeys(trees, 0.0)
    for _ in range(reps):
        for tree, root in trees.items():
            wall, cpu, peak = cpu_run(args, root)
            walls[tree].append(wall)
            cpus[tree].append(cpu)
            rss[tree] = max(rss[tree], peak)
    return {tree: (walls[tree], cpus[tree], rss[tree]) for tree in trees}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--nodes", type=int, default=12, help="devnet nodes (default 12)")
    parser.add_argument("--rows", default=None, help="only these reading rows, comma-separated (e.g. show,nodes)")
    parser.add_argument("--devnet", type=Path, default=None, help="use this running `devnet up` home (not started)")
    parser.add_argument("--compare", type=Path, default=None, metavar="OLD_TREE", help="also time this tree's code")
    args = parser.parse_args()
    reps = 5 if args.quick else 11
    here = Path(__file__).resolve().parent.parent
    trees = {"new": here} if args.compare is None else {"new": here, "old": args.compare.resolve()}
    out: dict[str, float] = {}
    bare = statistics.median(bare_python(reps))
    out["python_pass_s"] = round(bare, 4)
    print(f"cli start-up benchmark ({reps} runs each, median; best in brackets)")
    floor = statistics.median(bare_python(reps, "import web3"))
    light = statistics.median(bare_python(reps, "import eth_abi"))
    out["python_import_web3_s"] = round(floor, 4)
    out["python_import_eth_abi_s"] = round(light, 4)
    print(f"  python -c pass                       {bare:6.3f} s  (the peer)")
    print(f"  python -c 'import web3'              {floor:6.3f} s  (the floor of a command that sends transactions)")
    print(f"  python -c 'import eth_abi'           {light:6.3f} s  (the floor of a command that only reads the chain)")

    def report(key: str, label: str, times: list[float], rss: float, limit: float) -> None:
        med = statistics.median(times)
        out[f"{key}_s"] = round(med, 4)
        out[f"{key}_limit_ratio"] = round(med / limit, 3)
        out[f"{key}_python_ratio"] = round(med / bare, 2)
        out[f"{key}_web3_ratio"] = round(med / floor, 2)
        out[f"{key}_light_floor_ratio"] = round(med / light, 2)
        out[f"{key}_peak_rss_mib"] = round(rss, 1)
        print(
            f"  {label:36} {med:6.3f} s  [{min(times):.3f}] = {med / limit:4.2f}x the {limit} s limit, "
            f"{med / bare:4.1f}x python, {med / floor:4.2f}x import web3, {med / light:4.2f}x the read floor; "
            f"peak RSS {rss:.0f} MiB"
        )

    for key, label, cmd in (("help", "datasov --help", ["--help"]), ("version", "datasov --version", ["--version"])):
        report(key, label, *timed(cmd, reps), HELP_LIMIT)

    with tempfile.TemporaryDirectory(prefix="datasov-bench-cli-") as tmp:
        devnet = None if args.devnet is not None else Devnet(Path(tmp) / "net", nodes=args.nodes)
        try:
            if devnet is not None:
                home = devnet.init_home(Path(tmp) / "alice", 1)
            else:
                home = Path(tmp) / "alice"
                net = str(args.devnet / "devnet.json")
                run_timed("init", "--home", str(home), "--network", net, "--dev-account", "1", "--no-passphrase")
            sample = Path(tmp) / "sample.bin"
            sample.write_bytes(os.urandom(64 << 10))
            n = min(6, args.nodes)
            k = max(1, n // 2)
            publish = ["publish", str(sample), "--home", str(home), "-k", str(k), "-n", str(n), "--json"]
            dataset = json.loads(run_timed(*publish, "--max-fee", "1").stdout)["dataset_id"]
            reads = {
                "balance": ["balance"],
                "datasets": ["datasets"],
                "show": ["show", str(dataset)],
                "mine": ["mine"],
                "licenses": ["licenses"],
                "pools": ["pools"],
                "nodes": ["nodes", "--no-probe"],
                "nodes_probe": ["nodes"],
                "guardians": ["guardians", "show", str(dataset)],
            }
            count = len(json.loads((Path(args.devnet or Path(tmp) / "net") / "devnet.json").read_text())["nodes"])
            print(f"  (devnet: {count} node processes; dataset {dataset}: {k}-of-{n})")
            os.chdir(tmp)  # `python -m datasov` puts the working directory first on sys.path: PYTHONPATH picks the tree
            wanted = set(args.rows.split(",")) if args.rows else set(reads)
            for key, cmd in reads.items():
                if key not in wanted:
                    continue
                label = f"datasov {' '.join(cmd[:1] + [c for c in cmd[1:] if c.startswith('-')])} --json"
                runs = compare_runs([*cmd, "--home", str(home), "--json"], reps, trees)
                times, cpu, rss = runs["new"]
                report(key, f"{label:30} (reads chain)", times, rss, READ_LIMIT)
                out[f"{key}_cpu_s"] = round(statistics.median(cpu), 4)
                if "old" in runs:
                    old_times, old_cpu, old_rss = runs["old"]
                    ratio = statistics.median(times) / statistics.median(old_times)
                    cpu_ratio = statistics.median(cpu) / statistics.median(old_cpu)
                    out[f"{key}_old_s"] = round(statistics.median(old_times), 4)
                    out[f"{key}_old_cpu_s"] = round(statistics.median(old_cpu), 4)
                    out[f"{key}_new_old_ratio"] = round(ratio, 3)
                    out[f"{key}_new_old_cpu_ratio"] = round(cpu_ratio, 3)
                    print(
                        f"  {'  the same, old tree':36} {statistics.median(old_times):6.3f} s  [{min(old_times):.3f}]"
                        f"; new/old wall {ratio:4.2f}, CPU {statistics.median(cpu):.3f} / "
                        f"{statistics.median(old_cpu):.3f} s = {cpu_ratio:4.2f}; peak RSS {old_rss:.0f} MiB"
                    )
        finally:
            if devnet is not None:
                devnet.stop()
    if args.json:
        print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
