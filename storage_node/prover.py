"""Storage proofs: accept assigned shares, answer every epoch's challenges, claim the fees.

Each epoch the chain's seed picks one leaf of every share under an active deal, never one a
proof has revealed in the current round (``challengeLeaf``; docs/replay.md). For
each share it holds and owes a proof for, the node reads the challenged leaf from a *verified* block, builds the
path leaf -> share root -> commitment root, checks the whole proof locally (it never submits one it
knows to be wrong) and submits them in batches before the epoch ends: one ``proveStorage`` call per
batch in the packed layout of :mod:`contracts.proofs` (one ``StorageProofs`` event lists what it proved).

Nothing is kept between runs: what is owed and what is proven is read from the chain, so a restart
(or a slow chain) just resumes with the current epoch. A share found corrupted is quarantined by the
store and not proven: the chain will see the miss, which is the truth.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from contracts import errors as chain_errors
from contracts.loop import Ticking
from contracts.models import Deal, StorageProof
from erasure import merkle

from .api.app import Metrics
from .chainview import ProverChain
from .errors import NodeError
from .store.index import ShareRecord
from .store.shares import ShareStore

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger("datasov.node.prover")

DEFAULT_BATCH = 16


@dataclass
class EpochReport:
    epoch: int
    proven: list[tuple[int, int]] = field(default_factory=list)  # (deal, share)
    failed: dict[tuple[int, int], str] = field(default_factory=dict)
    gas_used: int = 0


@dataclass
class ProverStats:
    accepted: int = 0
    proofs: int = 0
    failed: int = 0
    gas_used: int = 0
    claimed: int = 0  # token units moved to the withdrawable balance
    epochs: list[EpochReport] = field(default_factory=list)


class Prover(Ticking):
    """``await prover.tick()`` does one round; ``await prover.run()`` keeps doing them."""

    def __init__(
        self,
        chain: ProverChain,
        account: LocalAccount,
        store: ShareStore,
        *,
        batch: int = DEFAULT_BATCH,
        poll: float = 1.0,
        claim_every: int = 8,
        metrics: Metrics | None = None,
    ) -> None:
        self.chain = chain
        self.account = account
        self.store = store
        self.batch = batch
        self.poll = poll
        self.claim_every = claim_every
        self.stats = ProverStats()
        self.metrics = metrics
        self._deals: dict[int, Deal] = {}
        self._accepted: set[tuple[int, int]] = set()
        self._done_epoch = -1
        self._next_start = 0  # the first block of the epoch after the one done (0: unknown)
        self._idle_head = -1  # the head at the last round that found nothing to prove

    async def _deal(self, deal_id: int) -> Deal:
        if deal_id not in self._deals:
            self._deals[deal_id] = await self.chain.get_deal(deal_id)
        return self._deals[deal_id]

    async def _held(self) -> list[ShareRecord]:
        return [r for r in await self.store.records() if r.deal_id and r.state == "ok"]

    # --------------------------------------------------------------- acceptance ----

    async def accept_new(self) -> int:
        """Accept on-chain every stored share assigned to this node and not yet accepted."""
        count = 0
        for r in await self._held():
            key = (r.deal_id, r.idx)
            if key in self._accepted:
                continue
            share = await self.chain.get_share(r.deal_id, r.idx)
            if share.provider.lower() != self.account.address.lower():
                continue  # replaced by another provider: not ours to prove
            if not share.accepted:
                try:
                    await self.chain.accept_share(self.account, r.deal_id, r.idx)
                except chain_errors.StateError as err:  # deal over: garbage collection will follow
                    log.info("share %d/%d not accepted: %s", r.deal_id, r.idx, err)
                    continue
                count += 1
            self._accepted.add(key)
        self.stats.accepted += count
        return count

    # ------------------------------------------------------------------- proofs ----

    async def build(self, record: ShareRecord, epoch: int, leaf_index: int) -> StorageProof:
        """The proof of ``leaf_index`` (the challenged leaf) of one share in ``epoch``, checked end to
        end before it is returned."""
        deal = await self._deal(record.deal_id)
        leaf, leaf_proof = await self.store.prove(record, leaf_index)  # reads a verified block
        share_proof = merkle.MerkleProof(record.idx, deal.n, record.share_proof)
        if merkle.root_from_proof(merkle.leaf_hash(leaf), leaf_proof) != record.root:
            raise NodeError(f"leaf {leaf_index} of {record.dataset}/{record.idx} does not prove its root")
        if merkle.root_from_proof(merkle.leaf_hash(record.root), share_proof) != deal.commitment_root:
            raise NodeError(f"share {record.idx} has no valid path to deal {record.deal_id}'s commitment")
        return StorageProof(
            deal_id=record.deal_id,
            share_index=record.idx,
            epoch=epoch,
            leaf=leaf,
            leaf_proof=leaf_proof.siblings,
            share_root=record.root,
            share_proof=record.share_proof,
        )

    async def prove_epoch(self, epoch: int) -> EpochReport:
        """Prove every share this node owes a proof for in ``epoch`` (skips what is proven)."""
        report = EpochReport(epoch)
        proofs: list[StorageProof] = []
        for r in await self._held():
            key = (r.deal_id, r.idx)
            try:
                duty = await self.chain.proof_duty(*key, epoch)  # one read: was four
                if not duty.owed or duty.provider.lower() != self.account.address.lower():
                    continue
                proofs.append(await self.build(r, epoch, duty.leaf))
            except (NodeError, OSError, chain_errors.ChainError) as err:  # a lost file is a missed proof
                report.failed[key] = str(err)
                log.warning("no proof for share %d/%d in epoch %d: %s", *key, epoch, err)
        for i in range(0, len(proofs), self.batch):
            await self._submit(proofs[i : i + self.batch], report)
        self.stats.proofs += len(report.proven)
        self.stats.failed += len(report.failed)
        self.stats.gas_used += report.gas_used
        if self.metrics is not None:
            self.metrics.proofs.labels("ok").inc(len(report.proven))
            self.metrics.proofs.labels("failed").inc(len(report.failed))
            self.metrics.proof_gas.inc(report.gas_used)
        self.stats.epochs.append(report)
        return report

    async def _submit(self, proofs: Sequence[StorageProof], report: EpochReport) -> None:
        try:
            if len(proofs) == 1:
                receipt = await self.chain.prove_storage(self.account, proofs[0])
            else:
                receipt = await self.chain.prove_storage_batch(self.account, proofs)
            report.gas_used += int(receipt["gasUsed"])
            report.proven.extend((p.deal_id, p.share_index) for p in proofs)
        except chain_errors.ChainError as err:
            if len(proofs) == 1:
                report.failed[(proofs[0].deal_id, proofs[0].share_index)] = str(err)
                return
            for p in proofs:  # one bad proof must not sink the others
                await self._submit([p], report)

    async def claim(self) -> int:
        """Claim the fees of every held share with at least ``claim_every`` proven, unclaimed epochs
        (claiming is a transaction: batching epochs saves gas)."""
        claimed = 0
        for r in await self._held():
            share = await self.chain.get_share(r.deal_id, r.idx)
            if share.provider.lower() == self.account.address.lower() and share.unclaimed >= self.claim_every:
                deal = await self._deal(r.deal_id)
                await self.chain.claim_fees(self.account, r.deal_id, r.idx)
                claimed += share.unclaimed * deal.fee_per_share_epoch
        self.stats.claimed += claimed
        if self.metrics is not None:
            self.metrics.fees_claimed.inc(claimed)
        return claimed

    # ---------------------------------------------------------------------- loop ----

    async def tick(self) -> EpochReport | None:
        """Accept new shares; prove the current epoch once its seed is readable; claim fees.

        Once an epoch is done, a tick reads only the block number until the next epoch can have
        begun (a call's block may be one past the latest), instead of the current epoch: every
        node ticks every second, and each ``currentEpoch`` call ran the chain's EVM. A round that
        found nothing to prove is not repeated until a block is mined."""
        await self.accept_new()
        head = await self.chain.block_number()
        if self._next_start and head + 1 < self._next_start:
            return None
        if head == self._idle_head:
            return None  # no block since a round with nothing to prove: the epoch reads would say the same
        epoch = await self.chain.current_epoch()
        if epoch == self._done_epoch:
            if not self._next_start:  # its read failed when the epoch was done
                self._next_start = await self.chain.epoch_start_block(epoch + 1)
            self._idle_head = head
            return None
        if head <= await self.chain.epoch_start_block(epoch):
            self._idle_head = head
            return None  # the seed (hash of the epoch's first block) is not available yet
        report = await self.prove_epoch(epoch)
        if not report.failed:  # otherwise try the failed ones again next round, while the epoch lasts
            self._done_epoch = epoch
            self._next_start = await self.chain.epoch_start_block(epoch + 1)
            if self.claim_every:
                await self.claim()
        return report
