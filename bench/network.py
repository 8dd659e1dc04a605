"""Network benchmark: nodes as processes vs in one process, discovery over the DHT, a new node's first share.

    python -m bench.network [--quick] [--json] [--nodes N] [--size MiB] [--announced M]

- publish and fetch (zfec, k-of-n over N nodes): once with every node its own ``datasov node run``
  process (libp2p on, chain over JSON-RPC: :class:`datasov.devnet_processes.ProcessNetwork`), once with every
  node in this process (:class:`datasov.devnet.LocalNetwork`); ratio = in-process / processes
  (1.0: processes cost nothing; the processes pay JSON-RPC and their own imports, and gain their
  own event loops);
- discovery: M announced nodes (libp2p hosts with signed peer records, in this process) found by a
  client through the DHT and combined with the chain's list by :class:`market.discovery.NetworkDirectory`
  (what ``datasov nodes`` reads), seconds; ratio to the limit of 5 s; once by the peer ids the chain
  announces, once from a list without them (a walk of the DHT's whole key space);
- first share: seconds from a new node process being started (staked, bootstrapped to the
  network) to holding its first share, as a publisher that found it places one there.

All on loopback on this machine (two cores shared): figures are floors for a real network.
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

from eth_account import Account
from libp2p.crypto.ed25519 import create_new_key_pair

from contracts.chain import ChainConfig
from contracts.devchain import dev_account
from contracts.terms import Purpose
from datasov.devnet import LocalNetwork
from datasov.devnet_processes import ProcessNetwork
from erasure.pipeline import Layout
from market import buyer, key_agent, publisher
from market.directory import Directory, NodeInfo, StaticDirectory
from market.discovery import NetworkDirectory
from market.keystore import Keystore
from storage_node.client import NodeClient
from storage_node.p2p.host import P2PHost

MiB = 1 << 20
DISCOVERY_LIMIT_S = 5.0


async def publish_and_fetch(
    chain: Any, directory: Directory, work: Path, data: Path, layout: Layout, tag: str
) -> tuple[float, float]:
    owner = Keystore.create(work / f"owner-{tag}", b"bench", account=dev_account(1))
    lab = Keystore.create(work / f"lab-{tag}", b"bench", account=dev_account(2))
    async with NodeClient(timeout=60) as client:
        t = time.perf_counter()
        pub = await publisher.publish(
            data,
            chain=chain,
            keystore=owner,
            directory=directory,
            client=client,
            staging=work / f"staging-{tag}",
            options=publisher.PublishOptions(layout=layout),
        )
        publish_s = time.perf_counter() - t
        await _servable(chain, pub.dataset_id)
        license_id = await buyer.buy(chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
        await key_agent.KeyAgent(chain, owner, home=work / f"owner-{tag}").tick()
        t = time.perf_counter()
        await buyer.fetch(chain, lab, directory, client, license_id, work / f"fetched-{tag}.bin")
        fetch_s = time.perf_counter() - t
    if not await asyncio.to_thread(_same, work / f"fetched-{tag}.bin", data):
        raise SystemExit(f"bench.network: the {tag} fetch returned other bytes")
    return publish_s, fetch_s


async def _servable(chain: Any, dataset_id: int, within: float = 300.0) -> None:
    """Until the nodes' provers have accepted enough shares (chain state, re-read every 0.1 s)."""
    deadline = time.monotonic() + within
    for _ in range(int(within * 10) + 1):
        if await chain.is_servable(dataset_id):
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    raise SystemExit("bench.network: the dataset never became servable")


def _same(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


async def processes_vs_one(work: Path, data: Path, nodes: int, layout: Layout) -> dict[str, float]:
    config = ChainConfig(epoch_blocks=200)
    local = await LocalNetwork.start(work / "local", nodes=nodes, config=config)
    try:
        one = await publish_and_fetch(local.chain, local.directory, work, data, layout, "local")
    finally:
        await local.stop()
    t = time.perf_counter()
    procs = await ProcessNetwork.start(work / "procs", nodes=nodes, config=config)
    start_s = time.perf_counter() - t
    try:
        many = await publish_and_fetch(procs.chain, procs.directory, work, data, layout, "procs")
        t = time.perf_counter()
        joined = await procs.add_node()
        first_share_s = await _first_share(procs, joined.address, work, t)
    finally:
        await procs.stop()
    return {
        "in_process_publish_s": one[0],
        "in_process_fetch_s": one[1],
        "processes_publish_s": many[0],
        "processes_fetch_s": many[1],
        "processes_start_s": start_s,
        "first_share_s": first_share_s,
    }


async def _first_share(net: ProcessNetwork, address: str, work: Path, started: float) -> float:
    """Publish a small dataset placed on the new node among others; seconds from its start to holding it."""
    small = work / "small.bin"
    await asyncio.to_thread(small.write_bytes, os.urandom(64 * 1024))
    others = [n for n in net.nodes if n.address != address][:2]
    directory = StaticDirectory([NodeInfo(address, net.nodes[-1].url), *(NodeInfo(n.address, n.url) for n in others)])
    owner = Keystore.create(work / "owner-join", b"bench", account=dev_account(3))
    async with NodeClient(timeout=60) as client:
        pub = await publisher.publish(
            small,
            chain=net.chain,
            keystore=owner,
            directory=directory,
            client=client,
            staging=work / "staging-join",
            options=publisher.PublishOptions(layout=Layout(codec="zfec", k=2, n=3)),
        )
    if address not in {p.address for p in pub.placements.values()}:
        raise SystemExit("bench.network: the new node got no share")
    return time.perf_counter() - started


async def discovery(announced: int) -> dict[str, float]:
    """``announced`` hosts with signed records; a client finds them through the DHT, combined with the chain list.

    Twice: with the peer ids and multiaddrs the chain's announcements carry (what ``ChainDirectory``
    gives: each record asked of its peer), and from a list without them (a walk of the DHT's key space).
    """
    hosts: list[P2PHost] = []
    infos = []
    try:
        t = time.perf_counter()
        first = P2PHost(create_new_key_pair(), listen="/ip4/127.0.1.1/tcp/0")
        await first.start()
        hosts = [first] + [
            P2PHost(create_new_key_pair(), listen=f"/ip4/127.0.{i + 1}.1/tcp/0", bootstrap=first.full_addrs)
            for i in range(1, announced)
        ]
        await asyncio.gather(*(h.start() for h in hosts[1:]))
        start_s = time.perf_counter() - t

        async def announce(i: int, host: P2PHost) -> NodeInfo:
            op = Account.create()
            url = f"http://127.0.{i + 1}.1:7000"
            terms = host.announcement(operator=op.address, http_url=url, chain_id=1, capacity=1 << 30)
            await host.announce(terms.sign(op), free=1 << 30)
            return NodeInfo(op.address, url, peer_id=terms.peer_id, multiaddrs=terms.multiaddrs)

        t = time.perf_counter()
        for at in range(0, announced, 8):
            infos += await asyncio.gather(*(announce(i, hosts[i]) for i in range(at, min(at + 8, announced))))
        announce_s = time.perf_counter() - t
        client = P2PHost(create_new_key_pair(), listen="/ip4/127.0.0.1/tcp/0", bootstrap=first.full_addrs)
        await client.start()
        try:
            t = time.perf_counter()
            views = await NetworkDirectory(StaticDirectory(infos), client).views()
            seconds = time.perf_counter() - t
            bare = [NodeInfo(n.address, n.url) for n in infos]
            t = time.perf_counter()
            walked = await NetworkDirectory(StaticDirectory(bare), client).views()
            walk_s = time.perf_counter() - t
        finally:
            await client.stop()
        found = sum(v.in_dht for v in views)
        found_walking = sum(v.in_dht for v in walked)
    finally:
        await asyncio.gather(*(h.stop() for h in hosts))
    return {
        "discovery_s": seconds,
        "discovered": found,
        "walk_s": walk_s,
        "walked": found_walking,
        "announced": announced,
        "hosts_start_s": start_s,
        "announce_s": announce_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 MiB over 6 nodes, 16 announced (else 32 MiB, 12, 64)")
    parser.add_argument("--size", type=int, default=None, help="dataset size in MiB")
    parser.add_argument("--nodes", type=int, default=None)
    parser.add_argument("--announced", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    size = (args.size or (4 if args.quick else 32)) * MiB
    nodes = args.nodes or (6 if args.quick else 12)
    announced = args.announced or (16 if args.quick else 64)
    layout = Layout(codec="zfec", k=nodes * 2 // 3, n=nodes)
    with tempfile.TemporaryDirectory(prefix="bench-network-") as tmp:
        work = Path(tmp)
        data = work / "data.bin"
        data.write_bytes(os.urandom(size))
        found = asyncio.run(discovery(announced))
        timings = asyncio.run(processes_vs_one(work, data, nodes, layout))
    result: dict[str, Any] = {
        "size_mib": size // MiB,
        "nodes": nodes,
        **{k: round(v, 2) for k, v in timings.items()},
        "publish_ratio": round(timings["in_process_publish_s"] / timings["processes_publish_s"], 3),
        "fetch_ratio": round(timings["in_process_fetch_s"] / timings["processes_fetch_s"], 3),
        "discovery_s": round(found["discovery_s"], 2),
        "discovered": found["discovered"],
        "announced": announced,
        "discovery_ratio_to_limit": round(found["discovery_s"] / DISCOVERY_LIMIT_S, 3),
        "walk_s": round(found["walk_s"], 2),
        "walked": found["walked"],
        "walk_ratio_to_limit": round(found["walk_s"] / DISCOVERY_LIMIT_S, 3),
        "hosts_start_s": round(found["hosts_start_s"], 2),
        "announce_s": round(found["announce_s"], 2),
    }
    print(
        f"publish {size // MiB} MiB over {nodes} nodes: in one process {result['in_process_publish_s']} s, "
        f"as processes {result['processes_publish_s']} s (ratio {result['publish_ratio']})\n"
        f"fetch: in one process {result['in_process_fetch_s']} s, as processes {result['processes_fetch_s']} s "
        f"(ratio {result['fetch_ratio']})\n"
        f"{nodes} node processes started in {result['processes_start_s']} s; a new node held its first share "
        f"{result['first_share_s']} s after it was started\n"
        f"discovery: {found['discovered']}/{announced} announced nodes found via chain list + DHT in "
        f"{result['discovery_s']} s ({result['discovery_ratio_to_limit']}x the {DISCOVERY_LIMIT_S} s limit), "
        f"each record asked by the peer id the chain announces\n"
        f"discovery without peer ids (a walk of the DHT key space): {found['walked']}/{announced} in "
        f"{result['walk_s']} s ({result['walk_ratio_to_limit']}x the limit); {announced} hosts started in "
        f"{result['hosts_start_s']} s, announced in {result['announce_s']} s"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
