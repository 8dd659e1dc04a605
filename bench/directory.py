"""How long a client takes to see the network from the chain: ``ChainDirectory.refresh`` (what
``datasov nodes`` and placement read) over N announced, staked operators on the embedded EVM.

    python -m bench.directory [--nodes 64] [--quick] [--json]

Figures: a cold read (every event since deployment), a warm read after one new block (its events
only), and a read at an unchanged head. Each is
printed against the 2 s limit set for `datasov nodes` and against the peer measured in the same
run: N sequential ``getOperator`` calls, the least any stake-checked view must do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from contracts.announcements import Announcement
from contracts.connection import TOKEN
from contracts.devchain import DevChain, dev_account
from market.chain_directory import ChainDirectory
from storage_node.membership import join

LIMIT = 2.0  # seconds


async def run(nodes: int) -> dict[str, float]:
    chain = await DevChain.embedded(dev_accounts=nodes + 1)
    for i in range(1, nodes + 1):
        op = dev_account(i)
        ann = Announcement(
            operator=op.address,
            http_url=f"http://127.0.{i}.1:7401",
            chain_id=chain.deployment.chain_id,
            capacity=1 << 40,
            ask=10**15,
            region="bench",
            peer_id="12D3KooWGzh7Y8sXmRKXL3nWSo2CF2jXM9PRsN6x2D8uBwEFCL1d",
            multiaddrs=(f"/ip4/127.0.{i}.1/tcp/7501",),
        )
        await join(chain, op, ann, stake=100 * TOKEN)
    out: dict[str, float] = {"nodes": nodes}
    t = time.perf_counter()
    for i in range(1, nodes + 1):
        await chain.get_operator(dev_account(i).address)
    out["peer_get_operator_s"] = time.perf_counter() - t
    directory = ChainDirectory(chain, max_age=0)
    t = time.perf_counter()
    await directory.refresh()
    out["cold_s"] = time.perf_counter() - t
    assert len(await directory.nodes()) == nodes
    await chain.mine(1)
    t = time.perf_counter()
    await directory.refresh()
    out["warm_s"] = time.perf_counter() - t
    t = time.perf_counter()
    await directory.refresh()
    out["same_head_s"] = time.perf_counter() - t
    await chain.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="the same run (64 nodes take well under a minute)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    out = asyncio.run(run(args.nodes))
    peer = out["peer_get_operator_s"]
    print(f"ChainDirectory over {args.nodes} announced operators (embedded EVM)")
    print(f"  peer: {args.nodes} getOperator calls   {peer:7.3f} s")
    for key, label in (("cold_s", "cold read"), ("warm_s", "warm read, one new block"), ("same_head_s", "same head")):
        v = out[key]
        print(f"  {label:<26} {v:7.3f} s = {v / LIMIT:.2f}x the {LIMIT:.0f} s limit, {v / peer:.2f}x the peer")
    if args.json:
        print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
