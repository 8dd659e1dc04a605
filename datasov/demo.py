"""``datasov demo``: the whole story on one machine, step by step, with a summary at the end.

Everything is real: an in-process EVM with the contracts, 12 nodes with sockets on loopback and
files on disk, the owner's key agent and fault reporter, the nodes' provers; and, in the last step,
a node from outside the devnet, in its own process, joining over JSON-RPC (:mod:`datasov.demo_join`).
Each step checks its outcome; the demo exits non-zero if any step failed.
"""

from __future__ import annotations

import asyncio
import filecmp
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts import errors
from contracts.chain import Chain, ChainConfig
from contracts.connection import TOKEN
from contracts.devchain import dev_account
from contracts.loop import Ticking
from contracts.terms import TRAINING_ALLOWED, Purpose
from erasure.pipeline import Layout
from market import audit, buyer, guardians, key_agent, publisher
from market.keystore import Keystore
from market.reporter import FaultReporter
from storage_node.client import NodeClient

from .demo_join import outside_node_story
from .demo_pools import pool_story
from .devnet import LocalNetwork, stop_task
from .devnet_guardians import DevnetGuardians

SAMPLE = Path(__file__).parent / "samples" / "tiny-corpus"
EPOCH_BLOCKS = 100
PRICE = 5 * TOKEN
FEE = TOKEN // 100  # per share per epoch
GUARDIANS, THRESHOLD = 5, 3


class StepFailed(Exception):
    pass


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class Demo:
    workdir: Path
    say: Callable[[str], None]
    nodes: int = 12
    steps: list[Step] = field(default_factory=list)

    async def step(self, name: str, action: Callable[[], Awaitable[str]]) -> bool:
        self.say(f"[bold]>>[/] {name}")
        start = time.perf_counter()
        try:
            detail, ok = await action(), True
        except Exception as err:
            detail, ok = f"{type(err).__name__}: {err}", False
        seconds = time.perf_counter() - start
        self.steps.append(Step(name, ok, detail, seconds))
        self.say(f"   {'[green]ok[/]' if ok else '[red]FAILED[/]'} ({seconds:.1f} s) {detail}")
        return ok

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "steps": [
                {"step": s.name, "ok": s.ok, "detail": s.detail, "seconds": round(s.seconds, 2)} for s in self.steps
            ],
        }


async def _wait_until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def run_demo(workdir: Path, say: Callable[[str], None], *, nodes: int = 12) -> Demo:
    demo = Demo(workdir, say, nodes)
    state: dict[str, Any] = {}
    tasks: list[asyncio.Task[None]] = []
    workers: list[Ticking] = []
    net: LocalNetwork | None = None

    async def start() -> str:
        nonlocal net
        net = await LocalNetwork.start(
            workdir / "network", nodes=nodes, config=ChainConfig(epoch_blocks=EPOCH_BLOCKS), prover_poll=0.5
        )
        for n in net.nodes:  # claim every epoch's fees until the epoch step has shown them
            if n.prover is not None:
                state["claim_every"], n.prover.claim_every = n.prover.claim_every, 1
        nodes_and_operators = [(n.home, n.node.operator) for n in net.nodes]
        state["guards"] = await DevnetGuardians.start(net.chain, nodes_and_operators, poll=0.5)
        state["owner"] = Keystore.create(workdir / "owner", b"demo owner passphrase", account=dev_account(1))
        state["lab"] = Keystore.create(workdir / "lab", b"demo lab passphrase", account=dev_account(2))
        return f"chain {net.chain.deployment.chain_id} (embedded EVM), {nodes} nodes on {net.nodes[0].node.url}..."

    async def publish() -> str:
        assert net is not None
        owner: Keystore = state["owner"]
        async with NodeClient() as client:
            pub = await publisher.publish(
                SAMPLE,
                chain=net.chain,
                keystore=owner,
                directory=net.directory,
                client=client,
                staging=workdir / "owner" / "staging",
                options=publisher.PublishOptions(
                    layout=Layout(k=4, n=10), price=PRICE, terms=TRAINING_ALLOWED, epochs=50, fee_per_share_epoch=FEE
                ),
            )
        state["pub"] = pub
        picked = guardians.pick(await net.chain.guardian_candidates(), GUARDIANS)
        data_key = owner.data_key_for(pub.manifest_hash)
        await guardians.share_key(net.chain, owner.account, pub.dataset_id, data_key, picked, THRESHOLD, fee_bps=200)
        agent = key_agent.KeyAgent(net.chain, owner, home=workdir / "owner", poll=0.1)
        reporter = FaultReporter(net.chain, owner.account, poll=0.2)
        state["agent"], state["reporter"] = agent, reporter
        tasks.extend([asyncio.create_task(agent.run()), asyncio.create_task(reporter.run())])
        workers.extend([agent, reporter])
        return (
            f"dataset {pub.dataset_id}: {pub.manifest.plaintext_size:,} bytes, 4-of-10 shares on 10 nodes, "
            f"deal {pub.deal_id}, training allowed, price 5 tokens; key split {THRESHOLD}-of-{GUARDIANS} among "
            "node operators as guardians"
        )

    async def buy() -> str:
        assert net is not None
        lab: Keystore = state["lab"]
        dataset_id = state["pub"].dataset_id
        for _ in range(300):  # the nodes' provers accept their shares on-chain within a few polls
            if await net.chain.is_servable(dataset_id):
                break
            await asyncio.sleep(0.1)
        license_id = await buyer.buy(net.chain, lab, dataset_id, Purpose.AI_TRAINING)
        await buyer.wait_for_key(net.chain, lab, license_id, within=30)
        state["license"] = license_id
        return (
            f"license {license_id} for ai_training; key encrypted to the lab's per-license key by the owner's "
            "agent, checked against the on-chain commitment"
        )

    async def fetch(out: Path) -> buyer.FetchReport:
        assert net is not None
        async with NodeClient(retries=1) as client:
            report = await buyer.fetch(net.chain, state["lab"], net.directory, client, state["license"], out)
        if not _same_tree(SAMPLE, out):
            raise StepFailed(f"{out} differs from the published sample")
        return report

    async def fetch_first() -> str:
        report = await fetch(workdir / "lab" / "fetched-1")
        return f"{report.bytes_written:,} bytes, byte-identical, shares used {report.shares_used}"

    async def offline_sale() -> str:
        assert net is not None
        agent = state["agent"]
        at = workers.index(agent)
        await stop_task(tasks.pop(at), workers.pop(at))  # the owner closes the laptop
        lab = Keystore.create(workdir / "lab-offline", b"demo lab passphrase", account=dev_account(4))
        license_id = await buyer.buy(net.chain, lab, state["pub"].dataset_id, Purpose.AI_TRAINING)
        key = await buyer.wait_for_key(net.chain, lab, license_id, within=60)
        pieces = await net.chain.license_pieces(license_id)
        if not pieces.complete or key != state["owner"].data_key_for(state["pub"].manifest_hash):
            raise StepFailed("the key did not come from the guardians")
        return (
            f"license {license_id}: the owner's agent is offline; {pieces.count} of {GUARDIANS} guardians checked "
            "the license on-chain (mayRelease) and delivered their pieces; the lab checked each against its "
            "commitment and rebuilt the key"
        )

    async def kill_two() -> str:
        assert net is not None
        pub = state["pub"]
        victims = [net.node_of(pub.placements[i].address).index for i in (0, 1)]

        async def accepted() -> bool:  # so that the chain expects their proofs
            return all([(await net.chain.get_share(pub.deal_id, i)).accepted for i in range(10)])

        await _wait_until(accepted, 30, "the nodes to accept their shares on-chain")
        state["stakes"] = {a: (await net.chain.get_operator(a)).stake for a in _operators(pub)}
        for v in victims:
            await net.kill(v)
        state["killed"] = victims
        report = await fetch(workdir / "lab" / "fetched-2")
        return f"killed nodes {victims}; fetched again from {report.shares_used}, byte-identical"

    async def epoch() -> str:
        assert net is not None
        chain, pub = net.chain, state["pub"]
        target = max([(await chain.get_share(pub.deal_id, i)).active_from for i in range(10)])
        await chain.advance_to_epoch(target)
        live = [i for i in range(10) if i not in (0, 1)]

        async def proven() -> bool:
            return all([await chain.is_proven(pub.deal_id, i, target) for i in live])

        await _wait_until(proven, 30, f"proofs for epoch {target}")
        await chain.advance_to_epoch(target + 1)
        reporter: FaultReporter = state["reporter"]

        killed = {pub.placements[i].address.lower() for i in (0, 1)}

        async def reported() -> bool:
            return {m.provider.lower() for m in reporter.reported} >= killed

        await _wait_until(reported, 30, "the missed proofs of the killed nodes to be reported")
        slashed = await _slashed(chain, state["stakes"])
        if slashed != killed:
            raise StepFailed(f"slashed operators {sorted(slashed)} are not the killed ones {sorted(killed)}")
        wrongly = {m.provider.lower() for m in reporter.reported} - killed
        if wrongly:
            raise StepFailed(f"live operators were reported for missed proofs: {sorted(wrongly)}")

        async def claimed() -> bool:
            return all([(await chain.get_share(pub.deal_id, i)).unclaimed == 0 for i in live])

        await _wait_until(claimed, 30, "fees to be claimed")
        for n in net.nodes:  # shown: from here on as often as a node does (a claim is a transaction per share)
            if n.prover is not None:
                n.prover.claim_every = state["claim_every"]
        earned = [await chain.storage_balance(pub.placements[i].address) for i in live]
        shown = sorted(a[:10] for a in slashed)
        return (
            f"epoch {target}: 8 live nodes proved their shares and earned {sum(earned) / TOKEN:.2f} tokens; "
            f"the 2 killed nodes missed, were reported and slashed ({', '.join(shown)}: stake fell)"
        )

    async def revoke() -> str:
        assert net is not None
        owner: Keystore = state["owner"]
        dataset_id = state["pub"].dataset_id
        await net.chain.revoke_consent(owner.account, dataset_id)
        other = Keystore.create(workdir / "lab2", b"demo lab2 passphrase", account=dev_account(3))
        try:
            await buyer.buy(net.chain, other, dataset_id, Purpose.AI_TRAINING)
        except errors.ConsentIsRevoked as err:
            return f"consent revoked; a new purchase was refused on-chain ({err.error_name})"
        raise StepFailed("a purchase after revocation went through")

    async def receipt() -> str:
        assert net is not None
        lab: Keystore = state["lab"]
        doc = await audit.build_receipt(net.chain, state["license"], lab.account)
        path = workdir / "lab" / "receipt.json"
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        check = await audit.verify_receipt(net.chain, json.loads(path.read_text()))
        if not check.ok:
            raise StepFailed(f"receipt did not verify: {check.problems}")
        stands = "still stands" if check.consent_stands else "no longer stands (revoked; the license was revocable)"
        return f"{path} verified against the chain; consent {stands}"

    async def pooled() -> str:
        assert net is not None
        return await pool_story(net, state["lab"], workdir / "pool", SAMPLE)

    async def outside_node() -> str:
        assert net is not None
        return await outside_node_story(net, state["owner"], workdir / "outside", SAMPLE, say, fee=FEE)

    try:
        plan: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            (f"start the chain and {nodes} nodes", start),
            ("owner publishes the sample dataset, training allowed", publish),
            ("lab buys a training license; the key is delivered", buy),
            ("lab fetches the dataset; the bytes match", fetch_first),
            ("owner goes offline; another lab buys and gets the key from 3 of 5 guardians", offline_sale),
            ("two nodes are killed; a second fetch still succeeds", kill_two),
            ("an epoch passes; nodes are paid for proofs, missing ones slashed", epoch),
            ("owner revokes consent; a new purchase is refused", revoke),
            ("the lab's consent receipt is written and verified", receipt),
            ("three contributors pool their data; a sale is split by weight; a withdrawal leaves the next", pooled),
            ("a node joins from outside (node init, join, run); it holds a new share, proves, is paid", outside_node),
        ]
        for name, action in plan:
            if not await demo.step(name, action) and name.startswith(("start", "owner publishes", "lab buys")):
                break  # later steps need these
    finally:
        for task, worker in zip(tasks, workers, strict=True):
            await stop_task(task, worker)
        if "guards" in state:
            await state["guards"].stop()
        if net is not None:
            await net.stop()
    return demo


def _operators(pub: publisher.Published) -> list[str]:
    return sorted({node.address for node in pub.placements.values()})


async def _slashed(chain: Chain, before: dict[str, int]) -> set[str]:
    """The operators (lowercase addresses) whose stake is below what ``before`` recorded."""
    return {a.lower() for a, stake in before.items() if (await chain.get_operator(a)).stake < stake}


def _same_tree(a: Path, b: Path) -> bool:
    """Byte-for-byte equality of two directory trees (or two files)."""
    if a.is_file():
        return b.is_file() and filecmp.cmp(a, b, shallow=False)
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errs = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errs and all(_same_tree(a / d, b / d) for d in cmp.common_dirs)
