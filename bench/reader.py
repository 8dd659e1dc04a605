"""Reader benchmark: random and sequential reads of a licensed folder dataset over loopback nodes.

    python -m bench.reader [--quick] [--json] [--size MiB]

On an in-process network of 10 nodes (3-of-10 zfec, 256 KiB blocks, 64 KiB AEAD messages), a folder
dataset of S bytes (1 GiB; 64 MiB with --quick): 4 MiB files, plus one file of exactly 1 MiB.

- time to first byte: ``DatasetReader.open`` (license checked on-chain, key and manifest verified,
  holders probed, file index read) + the first 4 KiB of a random file; p50 and p99 over R opens;
- random 4 KiB reads per second through one open reader (no prefetch; the LRU holds 16 of the
  dataset's segments, so most reads miss it);
- sequential MB/s streaming every file through a reader, as a ratio to ``datasov fetch`` (buyer.fetch
  to disk) of the same dataset in the same run;
- bytes moved from the nodes per byte read, for the 1 MiB file read alone (no prefetch), against the
  covering segments' share of it (the target: no more than those), block roots counted apart;
- peak RSS of a separate process streaming the whole dataset through ``datasov://`` (fsspec), for S
  and 4 S (quick: 32 and 128 MiB): the ratio should stay near 1 (flat). The child is
  :mod:`bench.reader_rss`, which imports only ``datasov.fsspec`` as a data tool does.

Everything but the RSS child runs in this one process on a shared CPU: nodes, chain and reader
compete, so the figures are floors for a real network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from contracts import errors
from contracts.chain import ChainConfig
from contracts.devchain import dev_account
from contracts.terms import Purpose
from datasov import rpc
from datasov.devnet import LocalNetwork
from erasure.pipeline import Layout
from market import buyer, key_agent, publisher, reader
from market.keystore import Keystore
from storage_node.client import NodeClient

MiB = 1 << 20
PASS = "bench"


class CountingClient(NodeClient):
    """A node client that counts the share bytes and block-root bytes it received."""

    share_bytes = 0
    root_bytes = 0

    async def get_share(self, url: str, dataset: str, index: int, *, start: int = 0, end: int | None = None) -> bytes:
        data = await super().get_share(url, dataset, index, start=start, end=end)
        self.share_bytes += len(data)
        return data

    async def roots(self, url: str, dataset: str, index: int) -> list[bytes]:
        got = await super().roots(url, dataset, index)
        self.root_bytes += 32 * len(got)
        return got


def make_folder(root: Path, size: int) -> list[str]:
    root.mkdir(parents=True)
    (root / "one-mib.bin").write_bytes(os.urandom(MiB))
    names = ["one-mib.bin"]
    left, i = size - MiB, 0
    while left > 0:
        n = min(4 * MiB, left)
        (root / f"part-{i:05d}.bin").write_bytes(os.urandom(n))
        names.append(f"part-{i:05d}.bin")
        left -= n
        i += 1
    return names


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def publish_and_license(net: LocalNetwork, owner: Keystore, lab: Keystore, data: Path, work: Path) -> int:
    async with NodeClient(timeout=60) as client:
        pub = await publisher.publish(
            data,
            chain=net.chain,
            keystore=owner,
            directory=net.directory,
            client=client,
            staging=work / "staging",
            options=publisher.PublishOptions(layout=Layout(k=3, n=10), upload_parallelism=10),
        )
    for index, info in pub.placements.items():
        with contextlib.suppress(errors.ContractRevert):  # accepted by the node itself already
            await net.chain.accept_share(net.node_of(info.address).node.operator, pub.deal_id, index)
    license_id = await buyer.buy(net.chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
    await key_agent.KeyAgent(net.chain, owner, home=owner.path.parent).tick()
    return license_id


async def measure(work: Path, size: int, opens: int, random_reads: int, rss_sizes: tuple[int, int]) -> dict[str, Any]:
    net = await LocalNetwork.start(
        work / "net", nodes=10, config=ChainConfig(epoch_blocks=200), capacity=64 << 30, provers=False
    )
    results: dict[str, Any] = {"size_mib": size // MiB, "nodes": 10, "k": 3, "n": 10}
    try:
        owner = Keystore.create(work / "owner", b"bench", account=dev_account(1))
        lab = Keystore.create(work / "lab", PASS.encode(), account=dev_account(2))
        names = make_folder(work / "data", size)
        license_id = await publish_and_license(net, owner, lab, work / "data", work)

        async with CountingClient(timeout=60) as client:
            # time to first byte
            ttfb = []
            for _ in range(opens):
                t = time.perf_counter()
                async with await reader.DatasetReader.open(net.chain, lab, net.directory, client, license_id) as r:
                    await r.read_file(random.choice(names), 0, 4096)
                ttfb.append(time.perf_counter() - t)
            results["ttfb_p50_ms"] = round(1000 * statistics.median(ttfb), 1)
            results["ttfb_p99_ms"] = round(1000 * pct(ttfb, 0.99), 1)

            async with await reader.DatasetReader.open(
                net.chain, lab, net.directory, client, license_id, prefetch=0
            ) as r:
                total = r.manifest.plaintext_size
                t = time.perf_counter()
                for _ in range(random_reads):
                    await r.read_range(random.randrange(0, total - 4096), 4096)
                results["random_4k_reads_per_s"] = round(random_reads / (time.perf_counter() - t), 1)

                # bytes moved for one 1 MiB file, read alone
                one = r.stat("one-mib.bin")
                covering = r.ranges.segments_for(one.offset, one.size)
                before = client.share_bytes
                assert await r.read_file("one-mib.bin") == (work / "data" / "one-mib.bin").read_bytes()
                moved = client.share_bytes - before
                results["one_mib_bytes_moved_per_byte"] = round(moved / one.size, 3)
                results["one_mib_covering_segments_per_byte"] = round(
                    len(covering) * r.manifest.segment_size / one.size, 3
                )
                results["block_root_bytes_at_open"] = client.root_bytes // (opens + 1)

            # sequential: a reader streaming every file, against fetch of the same dataset
            async with await reader.DatasetReader.open(
                net.chain, lab, net.directory, client, license_id, prefetch=8, readahead=8, cache_segments=18
            ) as r:
                t = time.perf_counter()

                def stream_all() -> int:
                    done = 0
                    for e in r.files():
                        offset = 0
                        while offset < e.size:
                            n = len(r.sync_read(e.offset + offset, min(MiB, e.size - offset)))
                            offset += n
                            done += n
                    return done

                streamed = await asyncio.to_thread(stream_all)
                seq = streamed / (time.perf_counter() - t)
            t = time.perf_counter()
            await buyer.fetch(net.chain, lab, net.directory, client, license_id, work / "fetched")
            fetch_rate = streamed / (time.perf_counter() - t)
            results["sequential_reader_mb_s"] = round(seq / 1e6, 1)
            results["fetch_mb_s"] = round(fetch_rate / 1e6, 1)
            results["sequential_over_fetch"] = round(seq / fetch_rate, 2)

        # peak RSS of a separate reader process, at two sizes
        runner, url = await rpc.serve(net.chain, "127.0.0.1", 0)
        try:
            home = lab.path.parent
            (home / "config.json").write_text(json.dumps(net.describe(url)))
            peaks = []
            for rss_size in rss_sizes:
                folder = work / f"rss-{rss_size // MiB}"
                make_folder(folder, rss_size)
                lid = await publish_and_license(net, owner, lab, folder, work)
                proc = await asyncio.create_subprocess_exec(  # a data tool's process: nothing of this benchmark
                    sys.executable, "-m", "bench.reader_rss", str(home), str(lid), PASS, stdout=subprocess.PIPE
                )
                out, _ = await proc.communicate()
                child = json.loads(out.decode().strip().splitlines()[-1])
                peaks.append(child["peak_rss_mib"])
                results.setdefault("rss_imported_mib", []).append(child["imported_mib"])
                results.setdefault("rss_opened_mib", []).append(child["opened_mib"])
            results["rss_sizes_mib"] = [s // MiB for s in rss_sizes]
            results["rss_peaks_mib"] = peaks
            results["rss_growth_ratio"] = round(peaks[1] / peaks[0], 2)
        finally:
            await runner.cleanup()
    finally:
        await net.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 MiB dataset, RSS at 32 and 128 MiB")
    parser.add_argument("--size", type=int, default=None, help="dataset size in MiB")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    size = (args.size or (64 if args.quick else 1024)) * MiB
    rss_sizes = (32 * MiB, 128 * MiB) if args.quick else (256 * MiB, 2048 * MiB)
    opens, random_reads = (10, 200) if args.quick else (40, 2000)
    with tempfile.TemporaryDirectory(prefix="bench-reader-") as tmp:
        r = asyncio.run(measure(Path(tmp), size, opens, random_reads, rss_sizes))
    print(f"reader benchmark: {r['size_mib']} MiB folder, 10 nodes, 3-of-10")
    print(f"  time to first byte (open + 4 KiB): p50 {r['ttfb_p50_ms']} ms, p99 {r['ttfb_p99_ms']} ms")
    print(f"  random 4 KiB reads: {r['random_4k_reads_per_s']}/s")
    print(
        f"  sequential: reader {r['sequential_reader_mb_s']} MB/s, fetch {r['fetch_mb_s']} MB/s: "
        f"{r['sequential_over_fetch']}x fetch"
    )
    print(
        f"  one 1 MiB file: {r['one_mib_bytes_moved_per_byte']} bytes moved per byte read "
        f"(its covering segments: {r['one_mib_covering_segments_per_byte']}; ratio "
        f"{r['one_mib_bytes_moved_per_byte'] / r['one_mib_covering_segments_per_byte']:.2f}); "
        f"block roots at open: {r['block_root_bytes_at_open']} bytes"
    )
    print(
        f"  peak RSS streaming everything: {r['rss_peaks_mib'][0]} MiB at {r['rss_sizes_mib'][0]} MiB, "
        f"{r['rss_peaks_mib'][1]} MiB at {r['rss_sizes_mib'][1]} MiB: {r['rss_growth_ratio']}x "
        f"(the child after its imports {r['rss_imported_mib']} MiB, after opening {r['rss_opened_mib']} MiB)"
    )
    if args.json:
        print(json.dumps(r, sort_keys=True))


if __name__ == "__main__":
    main()
