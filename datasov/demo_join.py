"""The demo's outside operator: a node that is not part of the devnet joins it the way an operator
on another machine would, and is paid.

In its own home it runs ``datasov node init``, ``datasov node join`` (stake, signed announcement on
the chain) and ``datasov node run --rpc`` (its own OS process, talking to the devnet's chain over
JSON-RPC); the owner publishes a new dataset and, finding the node on the chain, places a share on
it; an epoch later the node has proven it, and ``datasov node claim`` and ``datasov node withdraw``
move its fees to its wallet. Each step is printed and checked against the chain.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from contracts.connection import TOKEN
from erasure.pipeline import Layout
from market import publisher
from market.keystore import Keystore
from market.placement import PlacementPolicy
from storage_node.client import NodeClient

from .devnet import LocalNetwork, fund_operator
from .procnet import NodeProcess, node_host, node_init, node_join, run_cli
from .rpc import serve

EPOCHS = 10
PROBE_TIMEOUT = 30.0  # seconds: the devnet's 12 nodes share one busy event loop with the chain


class JoinStepFailed(Exception):
    """The outside node's story went wrong (what the chain says instead is in the message)."""


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise JoinStepFailed(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def outside_node_story(
    net: LocalNetwork, owner: Keystore, workdir: Path, sample: Path, say: Callable[[str], None], *, fee: int
) -> str:
    """Run the story (``fee``: token base units per share per epoch); one line saying what happened.
    The node process is stopped at the end, whatever happened."""
    chain = net.chain
    runner, rpc = await serve(chain, "127.0.0.1", 0)
    deployment = workdir / "deployment.json"
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    chain.deployment.save(deployment)
    index = len(net.nodes)
    home, host = workdir / "node", node_host(index)
    node: NodeProcess | None = None
    try:
        operator = await node_init(home, host=host, capacity=net.capacity)
        say(f"   datasov node init --home {home}: operator {operator}")
        await fund_operator(chain, operator)  # the devnet's faucet: on a real network, the operator buys them
        joined = await node_join(home, rpc, deployment)
        op = await chain.get_operator(operator)
        if not op.registered or op.stake != int(joined["stake"]):
            raise JoinStepFailed(f"node join said stake {joined['stake']}, the chain says {op.stake}")
        say(f"   datasov node join: staked {int(joined['staked']) / TOKEN:g} tokens, announced {joined['url']}")
        node = NodeProcess(index, home, host, operator=operator)
        await node.start(rpc, deployment)
        say(f"   datasov node run --rpc {rpc}: pid {node.pid}, listening on {node.url}")

        live = sum(n.alive for n in net.nodes) + 1  # every live node gets a share, the newcomer too
        async with NodeClient() as client:
            pub = await publisher.publish(
                sample,
                chain=chain,
                keystore=owner,
                directory=net.directory,  # the chain's announcements: the newcomer is on them
                client=client,
                staging=workdir / "staging",
                options=publisher.PublishOptions(
                    layout=Layout(k=2, n=live),
                    epochs=EPOCHS,
                    fee_per_share_epoch=fee,
                    placement=PlacementPolicy(probe_timeout=PROBE_TIMEOUT),
                ),
            )
        mine = [i for i, p in pub.placements.items() if p.address.lower() == operator.lower()]
        if not mine:
            raise JoinStepFailed(f"dataset {pub.dataset_id} placed no share on the new node")
        share = mine[0]

        async def accepted() -> bool:
            return (await chain.get_share(pub.deal_id, share)).accepted

        await _until(accepted, 120, "the new node to accept its share on-chain")
        say(f"   dataset {pub.dataset_id} (deal {pub.deal_id}): share {share} of {live} on the new node, accepted")

        epoch = (await chain.get_share(pub.deal_id, share)).active_from
        await chain.advance_to_epoch(epoch)

        async def proven() -> bool:
            return await chain.is_proven(pub.deal_id, share, epoch)

        await _until(proven, 120, f"the new node's proof for epoch {epoch}")
        await chain.advance_to_epoch(epoch + 1)  # the epoch has passed
        say(f"   epoch {epoch}: the new node proved its share")

        args = ["--home", str(home), "--rpc", rpc, "--deployment", str(deployment)]
        claimed = await run_cli("node", "claim", *args, log_file=home / "node.log")
        owed = await chain.storage_balance(operator)
        if int(claimed["claimed"]) < fee or owed != int(claimed["withdrawable"]):
            raise JoinStepFailed(f"node claim said {claimed}, the chain holds {owed} for the operator")
        say(f"   datasov node claim: {int(claimed['claimed']) / TOKEN:g} tokens, withdrawable {owed / TOKEN:g}")
        wallet = await chain.balance_of(operator)
        withdrawn = await run_cli("node", "withdraw", *args, log_file=home / "node.log")
        after = await chain.balance_of(operator)
        if int(withdrawn["withdrawn"]) != owed or after != wallet + owed or await chain.storage_balance(operator):
            raise JoinStepFailed(f"node withdraw said {withdrawn}; the wallet went from {wallet} to {after}")
        say(f"   datasov node withdraw: {owed / TOKEN:g} tokens to the wallet, which holds {after / TOKEN:g}")
        return (
            f"operator {operator[:10]} (its own home and process, pid {node.pid}) joined with stake "
            f"{op.stake / TOKEN:g}, held share {share} of dataset {pub.dataset_id}, proved epoch {epoch}, "
            f"claimed and withdrew {owed / TOKEN:g} tokens"
        )
    finally:
        if node is not None:
            await node.stop()
        await runner.cleanup()
