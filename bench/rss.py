"""Peak RSS of ``datasov publish`` and ``datasov fetch`` across file sizes: flat, under 300 MiB (issue 15).

    python -m bench.rss [--quick] [--sizes MiB,MiB,...] [-k K] [-n N] [--nodes NODES] [--in-process] [--json]

One ``datasov devnet up`` (each node its own process unless ``--in-process``; each offering what
the largest file's shares need: ``devnet up --capacity``), an owner and a lab home; per size a
fresh random file is published, licensed (key delivered by the owner's agent, not measured) and
fetched through the CLI, checked by SHA-256, then deleted. Each command's peak RSS is its own
``wait4`` maximum. Prints each figure, its ratio to the 300 MiB limit and to the smallest size's
(measured in the same run: "flat" is a ratio near 1). Needs ~2.3x the largest size of free disk
(input, output, shares) under the temporary directory (``TMPDIR``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from .cliproc import Devnet
from .peers import MiB, datasov_round, fetch_path, node_capacity_mib, random_file, sha256

LIMIT_MIB = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="16 and 64 MiB")
    parser.add_argument("--sizes", default="256,4096", help="MiB per file, comma-separated (default 256,4096)")
    parser.add_argument("-k", type=int, default=3)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=None, help="storage nodes (default: n)")
    parser.add_argument("--in-process", action="store_true", help="the nodes inside the devnet's process")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    sizes = [16, 64] if args.quick else [int(s) for s in args.sizes.split(",")]
    nodes = args.nodes or args.n
    capacity = node_capacity_mib(sum(sizes), args.k, 1)  # every file's share stays until the end
    extra = ("--capacity", f"{capacity}MiB", *(("--in-process",) if args.in_process else ()))
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="datasov-bench-rss-") as tmp_s:
        tmp = Path(tmp_s)
        t = time.perf_counter()
        devnet = Devnet(tmp / "net", nodes=nodes, extra=extra)
        try:
            owner = devnet.init_home(tmp / "owner", 1)
            lab = devnet.init_home(tmp / "lab", 2)
            print(f"# devnet up ({nodes} nodes, {capacity} MiB each) in {time.perf_counter() - t:.1f} s")
            for size in sizes:
                src, out = tmp / "in.bin", tmp / "out.bin"
                want = random_file(src, size * MiB)
                ours = datasov_round(devnet, owner, lab, src, out, args.k, args.n)
                if sha256(out) != want:
                    raise SystemExit(f"{size} MiB: the copy differs from the input (SHA-256); no figures")
                src.unlink()
                out.unlink()
                pub, fet = ours["publish"], ours["fetch"]
                rows.append(
                    {
                        "size_mib": size,
                        "publish_s": round(pub.seconds, 2),
                        "publish_peak_rss_mib": round(pub.peak_rss_mib, 1),
                        "fetch_s": round(fet.seconds, 2),
                        "fetch_peak_rss_mib": round(fet.peak_rss_mib, 1),
                    }
                )
                print(f"# {size} MiB: publish {pub.seconds:.1f} s, fetch {fet.seconds:.1f} s; sha256 ok")
                print("#   fetch: " + fetch_path(fet.stdout))
        finally:
            devnet.stop()
    print(f"peak RSS, {args.k}-of-{args.n}, {nodes} nodes (limit {LIMIT_MIB:.0f} MiB; ratio to the {sizes[0]} MiB run)")
    first = rows[0]
    for row in rows:
        for cmd in ("publish", "fetch"):
            rss = row[f"{cmd}_peak_rss_mib"]
            print(
                f"  {row['size_mib']:6.0f} MiB {cmd:7} {rss:6.1f} MiB = {rss / LIMIT_MIB:4.2f}x the limit, "
                f"{rss / first[f'{cmd}_peak_rss_mib']:4.2f}x the smallest ({row[f'{cmd}_s']:.1f} s)"
            )
    if args.json:
        print(json.dumps({"k": args.k, "n": args.n, "nodes": nodes, "runs": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
