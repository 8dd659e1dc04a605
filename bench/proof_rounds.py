"""Do honest nodes prove every epoch on a big devnet? ``python -m bench.proof_rounds``

Starts ``datasov devnet up`` with NODES node processes, publishes SIZE MiB at K-of-N, lets the
nodes prove for SECONDS, then reads every ``StorageProofs`` event once and prints, per epoch, the
shares proven and missed, the blocks the chain mined per second, and the fraction missed against
the limit of 0 (every node here is honest). Reading the events only at the end keeps the watcher
from loading the chain it measures. Example::

    python -m bench.proof_rounds --nodes 30 -k 10 -n 30 --seconds 120
    python -m bench.proof_rounds --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from contracts.chain import Chain
from contracts.models import Deployment
from contracts.proofs import proven_shares

from .cliproc import Devnet, run_timed


async def proofs_per_epoch(net: dict[str, Any], deal_id: int, seconds: float) -> tuple[dict[int, set[int]], int, float]:
    """(epoch -> shares of the deal proven in it, shares in the deal, blocks mined per second)."""
    chain = await Chain.connect(net["rpc"], Deployment.from_json(net["deployment"]))
    try:
        t0, b0 = time.perf_counter(), await chain.block_number()
        await asyncio.sleep(seconds)
        rate = (await chain.block_number() - b0) / (time.perf_counter() - t0)
        shares = await chain.get_shares(deal_id)
        first = max(s.active_from for s in shares)  # every share owes a proof from here on
        current = await chain.current_epoch()
        proven: dict[int, set[int]] = {e: set() for e in range(first, current)}
        for log in await chain.storage_market.events.StorageProofs().get_logs(from_block=0):
            for d, i in proven_shares(bytes(log["args"]["shares"])):
                if d == deal_id and int(log["args"]["epoch"]) in proven:
                    proven[int(log["args"]["epoch"])].add(i)
        return proven, len(shares), rate
    finally:
        await chain.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--size", type=int, default=16, help="MiB published")
    parser.add_argument("--seconds", type=float, default=120, help="how long the nodes prove")
    parser.add_argument("--block-time", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="10 nodes, 3-of-10, 4 MiB, 40 s")
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.k, args.n, args.size, args.seconds = 10, 3, 10, 4, 40.0
    with tempfile.TemporaryDirectory(prefix="datasov-proofs-") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "data.bin"
        src.write_bytes(os.urandom(args.size << 20))
        t = time.perf_counter()
        devnet = Devnet(tmp / "net", nodes=args.nodes, block_time=args.block_time, extra=("--capacity", "256MiB"))
        try:
            print(f"# devnet up ({args.nodes} node processes) in {time.perf_counter() - t:.1f} s")
            owner = devnet.init_home(tmp / "owner", 1)
            layout = ("-k", str(args.k), "-n", str(args.n))
            published = run_timed("publish", str(src), "--home", str(owner), *layout, "--price", "0", "--json")
            deal_id = int(json.loads(published.stdout)["deal_id"])
            load = os.getloadavg()[0]
            print(f"# publish {args.size} MiB {args.k}-of-{args.n}: {published.seconds:.1f} s; load {load:.1f}")
            net = json.loads((devnet.home / "devnet.json").read_text())
            proven, n, rate = asyncio.run(proofs_per_epoch(net, deal_id, args.seconds))
        finally:
            devnet.stop()
    owed = missed = 0
    for epoch, shares in sorted(proven.items()):
        lost = sorted(set(range(n)) - shares)
        owed, missed = owed + n, missed + len(lost)
        print(f"epoch {epoch}: proven {len(shares)}/{n}" + (f", missed {lost}" if lost else ""))
    print(f"blocks per second: {rate:.2f} (block time {args.block_time} s: limit {1 / args.block_time:.2f})")
    print(f"missed proofs: {missed} of {owed} owed = {missed / max(owed, 1):.3f} (limit 0: every node is honest)")


if __name__ == "__main__":
    main()
