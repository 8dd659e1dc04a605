"""A folder's whole fetch, streamed (:mod:`market.stream_folder`) vs through the reader
(:mod:`market.reader_fetch`), alternating on one in-process network (issue 15, item 4).

    python -m bench.reader_folder_ab [--quick] [--size MiB] [--rounds R]

Publishes a folder of SIZE MiB (:func:`bench.reader.make_folder`) on 10 in-process nodes, buys a
license, then fetches it ROUNDS times each way given the same checked license, key and manifest;
each copy is compared with the source tree. Prints each round's seconds and MB/s, the best of each
and their ratio (the machine may be loaded: the ratio is measured in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from contracts.chain import ChainConfig
from contracts.devchain import dev_account
from datasov.demo import _same_tree
from datasov.devnet import LocalNetwork
from market import buyer, holders, reader_fetch, stream_folder
from market.dataset_fetch import WholeFetch
from market.keystore import Keystore
from storage_node.client import NodeClient

from .reader import PASS, MiB, make_folder, publish_and_license


async def main_async(size: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="datasov-bench-folder-ab-", dir=os.environ.get("TMPDIR")) as t:
        work = Path(t)
        config = ChainConfig(epoch_blocks=200)
        net = await LocalNetwork.start(work / "net", nodes=10, config=config, capacity=64 << 30, provers=False)
        try:
            owner = Keystore.create(work / "owner", b"bench", account=dev_account(1))
            lab = Keystore.create(work / "lab", PASS.encode(), account=dev_account(2))
            make_folder(work / "data", size * MiB)
            lid = await publish_and_license(net, owner, lab, work / "data", work)
            best: dict[str, float] = {}
            async with NodeClient(timeout=60) as client:
                lic, key = await buyer.licensed_key(net.chain, lab, lid)
                found, man = await holders.located(net.chain, net.directory, client, lic.dataset_id)
                ways = (("streamed", stream_folder.fetch_folder), ("reader", reader_fetch.fetch_to))
                for r in range(rounds):
                    for name, fetch in ways:
                        out = work / f"out-{name}-{r}"
                        t0 = time.perf_counter()
                        job = WholeFetch(client, found, man, key, out, lic.dataset_id, directory=net.directory)
                        report = await fetch(job)
                        took = time.perf_counter() - t0
                        if not _same_tree(work / "data", out):
                            raise SystemExit(f"the {name} copy differs from the source")
                        best[name] = min(best.get(name, took), took)
                        print(
                            f"round {r + 1} {name:<8} {took:6.2f} s  {man.plaintext_size / took / 1e6:6.1f} MB/s  "
                            f"excluded {report.excluded}  hedged {report.hedged}",
                            flush=True,
                        )
                        shutil.rmtree(out)
        finally:
            await net.stop()
    print(
        f"best of {rounds}: streamed {best['streamed']:.2f} s, reader {best['reader']:.2f} s: "
        f"streamed {best['reader'] / best['streamed']:.2f}x the reader's speed"
    )
    print(f"# load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="16 MiB, 2 rounds")
    parser.add_argument("--size", type=int, default=64, help="MiB (default 64)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size, rounds = (16, 2) if args.quick else (args.size, args.rounds)
    asyncio.run(main_async(size, rounds))


if __name__ == "__main__":
    main()
