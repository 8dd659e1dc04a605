"""Soak: a seeded random schedule of publish, fetch, kill, restart, corruption, epochs and repair.

    python -m bench.soak [--rounds 60] [--nodes 14] [--seed 1] [--json]

Everything is real and in this process: the embedded chain, the nodes (sockets on loopback, files
on disk), their provers, the owner's fault reporter and repair agent, the lab's fetches. Each round
picks one action; every few rounds an epoch passes (proofs, missed-proof reports, repair). It starts
with an always-honest phase: every node proves each epoch promptly and the reporter reports every
epoch it can right after the proofs land; nobody may be slashed there. At most
two nodes are down at once and at most one share is corrupted between epochs, so no dataset ever
loses more than n - k shares between repairs: a failure to fetch is a lost dataset.

Prints: datasets lost (must be 0), bytes wrong (must be 0), repairs done, repair traffic as a
multiple of the bytes rebuilt, proof gas per epoch, and honest nodes slashed (must be 0). The same
seed replays the same schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.chain import ChainConfig
from contracts.connection import TOKEN
from contracts.devchain import dev_account
from contracts.terms import Purpose
from datasov.devnet import LocalNetwork
from erasure.pipeline import Layout
from market import buyer, key_agent, publisher
from market.keystore import Keystore
from market.repair import RepairAgent
from market.reporter import FaultReporter
from storage_node.client import NodeClient

LAYOUTS = [Layout(k=2, n=6, block_size=64 << 10), Layout(k=3, n=8, block_size=64 << 10), Layout(k=4, n=10)]


ACTIONS = [("publish", 3), ("fetch", 4), ("kill", 1), ("restart", 1), ("corrupt", 1)]
EPOCH_EVERY = 6


def schedule(seed: int, rounds: int) -> list[str]:
    """The actions of a soak, one per round ("epoch" every EPOCH_EVERY rounds): a function of the
    seed and the number of rounds only, so a run replays from its seed."""
    rng = random.Random(seed)
    names, weights = [a for a, _ in ACTIONS], [w for _, w in ACTIONS]
    return ["epoch" if r % EPOCH_EVERY == 0 else rng.choices(names, weights=weights)[0] for r in range(1, rounds + 1)]


@dataclass
class Stats:
    rounds: int = 0
    published: int = 0
    fetches: int = 0
    datasets_lost: int = 0
    bytes_wrong: int = 0
    kills: int = 0
    restarts: int = 0
    corruptions: int = 0
    epochs: int = 0
    repairs: int = 0
    repair_fetched: int = 0
    repair_rebuilt: int = 0
    proof_gas: int = 0
    honest_epochs: int = 0
    honest_slashes: int = 0
    slashed_nodes: set[str] = field(default_factory=set)
    faulty_nodes: set[str] = field(default_factory=set)  # missed a proof window it was made to miss
    honest_slashed: set[str] = field(default_factory=set)  # reported for a window it did not miss
    problems: list[str] = field(default_factory=list)


async def soak(work: Path, *, rounds: int, nodes: int, seed: int, honest_epochs: int = 3) -> Stats:
    rng = random.Random(seed + 1)  # the details (sizes, victims); the actions come from schedule(seed)
    stats = Stats()
    net = await LocalNetwork.start(work / "net", nodes=nodes, config=ChainConfig(epoch_blocks=200), background=False)
    chain = net.chain
    owner = Keystore.create(work / "owner", b"soak", account=dev_account(1))
    lab = Keystore.create(work / "lab", b"soak", account=dev_account(2))
    agent = key_agent.KeyAgent(chain, owner, home=work / "owner")
    reporter = FaultReporter(chain, owner.account)
    datasets: list[tuple[int, int, str, int]] = []  # (dataset id, license id, sha256, size)
    down: dict[int, set[str]] = {}  # epoch -> providers dead at some point during it
    corrupted: set[tuple[int, int, str]] = set()  # (deal, share, provider) whose copy was destroyed
    min_stake = int(await chain.call(chain.storage_market.functions.minStake()))
    try:
        async with NodeClient(timeout=5, retries=1) as client:
            # threshold above any n: every lost share is rebuilt at the next epoch (the product default,
            # k + 2, waits longer; here we want repairs exercised)
            repairer = RepairAgent(chain, owner.account, net.directory, client, workdir=work / "repair", threshold=99)

            async def publish() -> None:
                size = rng.randrange(64 << 10, 3 << 20)
                data = rng.randbytes(size)
                path = work / f"data-{stats.published}.bin"
                path.write_bytes(data)
                for n in net.nodes:  # operators whose share was corrupted re-stake too
                    if n.alive:
                        await top_up(n.node.operator)
                pub = await publisher.publish(
                    path,
                    chain=chain,
                    keystore=owner,
                    directory=net.directory,
                    client=client,
                    staging=work / "staging",
                    options=publisher.PublishOptions(
                        layout=rng.choice(LAYOUTS), epochs=10_000, fee_per_share_epoch=TOKEN // 1000
                    ),
                )
                path.unlink()
                await net.prove_all()  # the holders accept their shares: only then can it be sold
                license_id = await buyer.buy(chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
                await agent.tick()
                datasets.append((pub.dataset_id, license_id, hashlib.sha256(data).hexdigest(), size))
                stats.published += 1

            async def fetch() -> None:
                dataset_id, license_id, digest, size = rng.choice(datasets)
                out = work / "fetched.bin"
                out.unlink(missing_ok=True)
                stats.fetches += 1
                try:
                    await buyer.fetch(chain, lab, net.directory, client, license_id, out)
                except buyer.BuyError as err:
                    stats.datasets_lost += 1
                    stats.problems.append(f"dataset {dataset_id}: {err}")
                    return
                got = out.read_bytes()
                if hashlib.sha256(got).hexdigest() != digest:
                    stats.bytes_wrong += size
                    stats.problems.append(f"dataset {dataset_id}: wrong bytes")

            async def kill() -> None:
                alive = [n for n in net.nodes if n.alive]
                if len(alive) > nodes - 2:
                    victim = rng.choice(alive)
                    await net.kill(victim.index)
                    down.setdefault(await chain.current_epoch(), set()).add(victim.node.address.lower())
                    stats.kills += 1

            async def restart() -> None:
                dead = [n for n in net.nodes if not n.alive]
                if dead:
                    back = rng.choice(dead)
                    await net.restart(back.index)
                    stats.restarts += 1
                    await top_up(back.node.operator)

            async def top_up(operator: Any) -> None:
                """A slashed operator stakes again, as a real one must to get new deals."""
                op = await chain.get_operator(operator.address)
                if op.stake < min_stake:
                    await chain.add_stake(operator, min_stake - op.stake)

            async def corrupt() -> None:
                candidates = [
                    (n, r) for n in net.nodes if n.alive and n.node.store for r in await n.node.store.records()
                ]
                candidates = [(n, r) for n, r in candidates if r.state == "ok"]
                if candidates and not corrupted_this_epoch:
                    n, r = rng.choice(candidates)
                    assert n.node.store is not None
                    path = n.node.store.share_path(r.dataset, r.idx)
                    path.write_bytes(bytes(path.stat().st_size))  # every block wrong: any challenge fails
                    corrupted.add((r.deal_id, r.idx, n.node.address.lower()))
                    stats.corruptions += 1
                    corrupted_this_epoch.append(n.node.address)

            async def epoch() -> None:
                now = await chain.current_epoch()
                down.setdefault(now, set()).update(n.node.address.lower() for n in net.nodes if not n.alive)
                await net.prove_all()  # accept new shares, prove the current epoch
                await chain.advance_to_epoch(await chain.current_epoch() + 1)
                await net.prove_all()
                # the reporter comes after this epoch's proofs: the previous epoch must still
                # count as proven for every node that proved it
                for m in await reporter.tick():
                    stats.slashed_nodes.add(m.provider)
                    who = m.provider.lower()
                    if who in down.get(m.epoch, set()) or (m.deal_id, m.share_index, who) in corrupted:
                        stats.faulty_nodes.add(m.provider)  # it really missed that window
                    else:
                        stats.honest_slashed.add(m.provider)
                        stats.problems.append(f"honest node slashed: {m}")
                for report in await repairer.tick():
                    if report.repaired:
                        stats.repairs += len(report.repaired)
                        stats.repair_fetched += report.bytes_fetched
                        stats.repair_rebuilt += report.bytes_rebuilt
                stats.epochs += 1
                corrupted_this_epoch.clear()

            corrupted_this_epoch: list[str] = []
            await publish()
            for _ in range(honest_epochs):  # nothing fails here: any slash is of an honest node
                await net.prove_all()
                await chain.advance_to_epoch(await chain.current_epoch() + 1)
                await net.prove_all()
                missed = await reporter.tick()
                stats.honest_epochs += 1
                stats.honest_slashes += len(missed)
                stats.slashed_nodes.update(m.provider for m in missed)
                stats.problems.extend(f"honest phase: {m}" for m in missed)
            actions = {"publish": publish, "fetch": fetch, "kill": kill, "restart": restart, "corrupt": corrupt}
            for name in schedule(seed, rounds):
                stats.rounds += 1
                await (epoch() if name == "epoch" else actions[name]())
            await epoch()
            for _ in datasets:  # every dataset, one last time
                await fetch()
        stats.proof_gas = sum(n.prover.stats.gas_used for n in net.nodes if n.prover is not None)
    finally:
        await net.stop()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--nodes", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    logging.getLogger("datasov").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        s = asyncio.run(soak(Path(tmp), rounds=args.rounds, nodes=args.nodes, seed=args.seed))
    honest_slashed = sorted(s.honest_slashed)
    result: dict[str, Any] = {
        "seed": args.seed,
        "schedule_rounds": args.rounds,
        "nodes": args.nodes,
        "rounds": s.rounds,
        "datasets": s.published,
        "fetches": s.fetches,
        "datasets_lost": s.datasets_lost,
        "bytes_wrong": s.bytes_wrong,
        "kills": s.kills,
        "restarts": s.restarts,
        "corruptions": s.corruptions,
        "epochs": s.epochs,
        "repairs_done": s.repairs,
        "repair_traffic_x": round(s.repair_fetched / s.repair_rebuilt, 2) if s.repair_rebuilt else None,
        "proof_gas_per_epoch": s.proof_gas // max(1, s.epochs),
        "nodes_slashed": len(s.slashed_nodes),
        "honest_nodes_slashed": len(honest_slashed),
        "honest_phase_epochs": s.honest_epochs,
        "honest_phase_slashes": s.honest_slashes,
        "problems": s.problems[:10],
    }
    ok = s.datasets_lost == 0 and s.bytes_wrong == 0 and not honest_slashed and not s.honest_slashes
    print(
        f"{s.rounds} rounds, {s.published} datasets, {s.fetches} fetches, {s.epochs} epochs; "
        f"{s.kills} kills, {s.restarts} restarts, {s.corruptions} corruptions\n"
        f"datasets lost {s.datasets_lost} (must be 0), bytes wrong {s.bytes_wrong} (must be 0), "
        f"honest nodes slashed {len(honest_slashed)} (must be 0), "
        f"slashes in the {s.honest_epochs}-epoch honest phase {s.honest_slashes} (must be 0)\n"
        f"repairs {s.repairs}, repair traffic {result['repair_traffic_x']}x the rebuilt bytes, "
        f"proof gas per epoch {result['proof_gas_per_epoch']:,}, nodes slashed {len(s.slashed_nodes)}\n"
        f"{'OK' if ok else 'FAILED: ' + '; '.join(s.problems[:3])}"
    )
    if args.json:
        print(json.dumps(result))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
