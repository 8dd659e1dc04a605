"""End-to-end benchmark: publish and fetch over real loopback nodes vs the pipeline alone, same run.

    python -m bench.e2e [--quick] [--json] [--size MiB] [--nodes N]

- limit (measured first): the pipeline alone encoding the same file into local share files, and
  decoding it back from them (same layout: 10-of-30 zfec, 256 KiB blocks);
- publish: encrypt + encode into staging, register + open the deal on the embedded chain, upload the
  30 shares in parallel to 30 nodes (each hashing and fsyncing what it receives); ratio = limit / publish
  time (target >= 0.7);
- fetch: manifest + block roots checked, any 10 verified blocks per segment fetched over HTTP,
  decoded, decrypted, written; ratio = limit / fetch time (target >= 0.7).

Both the pipeline's output and the fetched file are compared with the input (SHA-256); a mismatch
stops the benchmark with no figure printed. The pipeline alone runs with its default pool (one worker
per core); the fetch gives the decoder 8 workers because most of them wait on the network, so both
sides use every core.

Nodes, chain and client all run in this one process (two cores here), so the node side's hashing
competes with the client's: the figure is a floor for a real network where each node has its own CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from contracts.chain import ChainConfig
from contracts.devchain import dev_account
from contracts.terms import Purpose
from datasov.devnet import LocalNetwork
from erasure import envelope, localfs
from erasure.decoding import decode
from erasure.pipeline import Layout, encode
from market import buyer, key_agent, publisher
from market.keystore import Keystore
from storage_node.client import NodeClient

MiB = 1 << 20


def _write_random(path: Path, size: int) -> None:
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def _same_bytes(expected: Path, got: Path, what: str) -> None:
    """A benchmark that returns wrong bytes measures nothing: stop with the figure withheld."""
    if _sha256(expected) != _sha256(got):
        raise SystemExit(f"bench.e2e: {what} returned bytes that differ from the input ({got})")


def pipeline_alone(data: Path, work: Path, layout: Layout) -> tuple[float, float]:
    """Seconds to encode into local share files, and to decode back from them."""
    key = envelope.new_data_key()
    src = localfs.open_dataset(data)
    t = time.perf_counter()
    with localfs.share_writers(work, layout.n) as sinks:
        result = encode(src.chunks, sinks, key=key, layout=layout, name=src.name, content=src.content, index=src.index)
    localfs.write_roots(work, result.block_roots)
    encode_s = time.perf_counter() - t
    sources = localfs.sources(work, result.manifest)
    t = time.perf_counter()
    with (work / "out.bin").open("wb") as out:
        for chunk in decode(result.manifest, key, sources):
            out.write(chunk)
    decode_s = time.perf_counter() - t
    _same_bytes(data, work / "out.bin", "the pipeline alone")
    return encode_s, decode_s


async def over_the_network(data: Path, work: Path, layout: Layout, nodes: int) -> dict[str, float]:
    net = await LocalNetwork.start(
        work / "net", nodes=nodes, config=ChainConfig(epoch_blocks=200), capacity=64 << 30, background=False
    )
    try:
        owner = Keystore.create(work / "owner", b"bench", account=dev_account(1))
        lab = Keystore.create(work / "lab", b"bench", account=dev_account(2))
        async with NodeClient(timeout=60) as client:
            t = time.perf_counter()
            pub = await publisher.publish(
                data,
                chain=net.chain,
                keystore=owner,
                directory=net.directory,
                client=client,
                staging=work / "staging",
                options=publisher.PublishOptions(layout=layout, upload_parallelism=nodes),
            )
            publish_s = time.perf_counter() - t
            for n in net.nodes:  # servable once the nodes accept their shares (not timed)
                assert n.prover is not None
                await n.prover.accept_new()
            license_id = await buyer.buy(net.chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
            await key_agent.KeyAgent(net.chain, owner, home=work / "owner").tick()
            t = time.perf_counter()
            await buyer.fetch(net.chain, lab, net.directory, client, license_id, work / "fetched.bin")
            fetch_s = time.perf_counter() - t
        _same_bytes(data, work / "fetched.bin", "fetch over the network")
        return {"publish_s": publish_s, "fetch_s": fetch_s, **{f"publish_{k}_s": v for k, v in pub.timings.items()}}
    finally:
        await net.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 MiB instead of 1 GiB")
    parser.add_argument("--size", type=int, default=None, help="dataset size in MiB")
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    size = (args.size or (64 if args.quick else 1024)) * MiB
    layout = Layout(codec="zfec", k=10, n=30)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        work = Path(tmp)
        data = work / "data.bin"
        _write_random(data, size)
        (work / "alone").mkdir()
        encode_s, decode_s = pipeline_alone(data, work / "alone", layout)
        for p in (work / "alone").iterdir():
            p.unlink()
        timings = asyncio.run(over_the_network(data, work, layout, args.nodes))
    result = {
        "size_mib": size // MiB,
        "layout": "zfec 10-of-30",
        "nodes": args.nodes,
        "pipeline_encode_mb_s": round(size / encode_s / 1e6, 1),
        "pipeline_decode_mb_s": round(size / decode_s / 1e6, 1),
        "publish_mb_s": round(size / timings["publish_s"] / 1e6, 1),
        "fetch_mb_s": round(size / timings["fetch_s"] / 1e6, 1),
        "publish_ratio": round(encode_s / timings["publish_s"], 3),
        "fetch_ratio": round(decode_s / timings["fetch_s"], 3),
        "publish_breakdown_s": {k: round(v, 2) for k, v in timings.items()},
        "target_ratio": 0.7,
    }
    print(
        f"pipeline alone: encode {result['pipeline_encode_mb_s']} MB/s, decode {result['pipeline_decode_mb_s']} MB/s\n"
        f"publish {result['publish_mb_s']} MB/s = {result['publish_ratio']}x the pipeline (target 0.7)\n"
        f"fetch   {result['fetch_mb_s']} MB/s = {result['fetch_ratio']}x the pipeline (target 0.7)\n"
        f"breakdown: {result['publish_breakdown_s']}"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
