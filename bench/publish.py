"""Publish through the CLI at several sizes: time, peak RSS (flat?) and ratio to the pipeline alone.

    python -m bench.publish [--quick] [--sizes 64,256] [-k 3] [-n 10] [--nodes 10] [--json]

For each size: a fresh random file; the pipeline alone (in this process: encrypt + code + hash into
local share files, same layout) timed first, then ``datasov publish`` as a user runs it against a
``datasov devnet up`` process (embedded chain and the nodes in that one process), timed with its own
peak RSS (``wait4``). Figures: publish MiB/s, ratio = pipeline time / publish time, and the peak RSS
of each size with the ratio largest / smallest (flat means about 1; the target is < 300 MiB at every
size, issue 15). Everything started is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from erasure import envelope, localfs
from erasure.pipeline import Layout, encode, preferred_codec

from .cliproc import Devnet, run_timed
from .peers import MiB, random_file


def pipeline_alone(src: Path, work: Path, layout: Layout) -> float:
    work.mkdir(parents=True, exist_ok=True)
    source = localfs.open_dataset(src)
    t = time.perf_counter()
    with localfs.share_writers(work, layout.n) as sinks:
        encode(source.chunks, sinks, key=envelope.new_data_key(), layout=layout, name=src.name, content=source.content)
    took = time.perf_counter() - t
    for p in work.iterdir():
        p.unlink()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="sizes 16 and 64 MiB")
    parser.add_argument("--sizes", default="64,256", help="MiB, comma-separated (default 64,256)")
    parser.add_argument("-k", type=int, default=3)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=None)
    parser.add_argument("--codec", default=None, help="isal or zfec (default: what the CLI picks, ISA-L if installed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    sizes = [16, 64] if args.quick else [int(s) for s in args.sizes.split(",")]
    nodes = args.nodes or args.n
    args.codec = args.codec or preferred_codec(args.k, args.n)
    layout = Layout(codec=args.codec, k=args.k, n=args.n)
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="datasov-bench-publish-") as tmp_s:
        tmp = Path(tmp_s)
        devnet = Devnet(tmp / "net", nodes=nodes)
        try:
            owner = devnet.init_home(tmp / "owner", 1)
            for mib in sizes:
                src = tmp / f"in-{mib}.bin"
                random_file(src, mib * MiB)
                alone = pipeline_alone(src, tmp / "alone", layout)
                args_ = ["publish", str(src), "--home", str(owner), "-k", str(args.k), "-n", str(args.n)]
                ran = run_timed(*args_, "--codec", args.codec, "--price", "0", "--json")
                seconds = json.loads(ran.stdout).get("seconds", {})
                rows.append(
                    {
                        "size_mib": mib,
                        "publish_s": round(ran.seconds, 2),
                        "pipeline_s": round(alone, 2),
                        "ratio_to_pipeline": round(alone / ran.seconds, 3),
                        "peak_rss_mib": round(ran.peak_rss_mib, 1),
                        **{f"stage_{k}_s": v for k, v in seconds.items()},
                    }
                )
                src.unlink()
                r = rows[-1]
                print(
                    f"publish {mib:5d} MiB: {r['publish_s']:6.1f} s ({mib / r['publish_s']:6.1f} MiB/s) ="
                    f" {r['ratio_to_pipeline']:.2f}x the pipeline alone ({r['pipeline_s']:.1f} s);"
                    f" peak RSS {r['peak_rss_mib']:.0f} MiB (limit 300); stages {seconds}"
                )
        finally:
            devnet.stop()
    flat = max(r["peak_rss_mib"] for r in rows) / min(r["peak_rss_mib"] for r in rows)
    print(f"peak RSS largest / smallest size: {flat:.2f} (flat = 1)")
    if args.json:
        print(
            json.dumps(
                {"layout": f"{args.codec} {args.k}-of-{args.n}", "nodes": nodes, "rows": rows, "rss_ratio": flat}
            )
        )


if __name__ == "__main__":
    main()
