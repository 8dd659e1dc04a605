"""A guardian's agent: release this operator's key piece to each licensee the contract says may be served.

It finds the datasets whose current guardian set names its account (``KeyGuardians``), opens the
piece the owner sealed to its X25519 key and checks it against the on-chain commitment (a piece
that fails is never delivered: the owner is told in the log). It follows ``LicensePurchased`` for
those datasets and keeps every license it has not served yet; each round, for each one, it asks
``mayRelease`` *and*, as defence in depth, checks for itself that consent stands, the terms allow
the purpose, the dataset is servable and the deadline is at least ``margin`` seconds away (a
delivery mined after the deadline reverts but publishes its piece). Only then does it seal its
piece to the buyer's current key (a piece dispute rotates it) and call ``deliverKeyPiece``.
Every decision is logged and kept in ``decisions``; one bad license never stops the agent.

State (``guardian.json`` in its home): the next block to scan and the licenses still to serve.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nacl.public import PrivateKey

from contracts import errors, pieces, shamir
from contracts.chain import Chain
from contracts.guardians import GuardianSet
from contracts.loop import Ticking
from contracts.models import LicenseStatus
from contracts.terms import Purpose

from .errors import MarketError
from .key_agent import MAX_RANGE, TRANSIENT, default_margin

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger("datasov.guardian")

STATE_FILE = "guardian.json"
KEY_FILE = "guardian.key"  # the X25519 secret, hex, mode 0600


def load_or_create_guardian_key(home: Path) -> PrivateKey:
    """The guardian X25519 key kept in ``home/guardian.key`` (0600), created on first use."""
    path = home / KEY_FILE
    if not path.exists():
        key = PrivateKey.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(bytes(key).hex() + "\n")
        return key
    if path.stat().st_mode & 0o077:
        raise MarketError(f"{path} is readable by others; run: chmod 600 {path}")
    try:
        return PrivateKey(bytes.fromhex(path.read_text().strip()))
    except ValueError as err:
        raise MarketError(f"{path} does not hold a guardian key") from err


@dataclass(frozen=True, slots=True)
class PieceDecision:
    license_id: int
    dataset_id: int
    outcome: str  # "delivered" | "refused" | "waiting" | "done"
    reason: str = ""
    final: bool = False  # nothing more to do for this license (dropped from the watch list)


class GuardianAgent(Ticking):
    """``await agent.tick()`` serves what can be served now; ``await agent.run()`` keeps following."""

    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        guardian_key: PrivateKey,
        *,
        home: Path,
        poll: float = 1.0,
        margin: int | None = None,
    ) -> None:
        self.chain = chain
        self.account = account
        self.guardian_key = guardian_key
        self.state_path = home / STATE_FILE
        self.poll = poll
        self.margin = default_margin(chain.deployment.delivery_window) if margin is None else margin
        self.decisions: list[PieceDecision] = []
        self._pieces: dict[tuple[int, int], shamir.Piece | None] = {}
        self._last: dict[int, PieceDecision] = {}
        self._guarded: dict[int, GuardianSet] = {}
        self._guard_block: int | None = None

    def _load(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text())
            return {"next_block": int(state["next_block"]), "pending": [int(x) for x in state["pending"]]}
        except FileNotFoundError:
            return {"next_block": self.chain.deployment.deployed_block, "pending": []}
        except (ValueError, KeyError, TypeError) as err:
            raise MarketError(f"{self.state_path} is malformed; delete it to rescan from the start") from err

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_path)

    async def my_piece(self, gset: GuardianSet) -> shamir.Piece | None:
        """This guardian's piece of a set, opened and checked against its commitment (None: unusable)."""
        cache_key = (gset.dataset_id, gset.epoch)
        if cache_key not in self._pieces:
            index = gset.index_of(self.account.address)
            piece: shamir.Piece | None = None
            try:
                sealed = (await self.chain.sealed_pieces(gset.dataset_id, gset.epoch))[index - 1]
                opened = pieces.open_from_owner(sealed, index, self.guardian_key)
                if pieces.commit(gset.dataset_id, gset.epoch, opened) == gset.commitments[index - 1]:
                    piece = opened
                else:
                    log.error("dataset %d epoch %d: the owner's piece fails its commitment", *cache_key)
            except (pieces.PieceError, IndexError) as err:
                log.error("dataset %d epoch %d: cannot open my piece: %s", *cache_key, err)
            self._pieces[cache_key] = piece
        return self._pieces[cache_key]

    async def _refresh_guarded(self, head: int) -> dict[int, GuardianSet]:
        """The datasets this account guards now, updated from the GuardiansSet events since last time."""
        start = self._guard_block if self._guard_block is not None else self.chain.deployment.deployed_block
        if start <= head:
            for ds in await self.chain.guardian_sets_changed(start, head):
                current = await self.chain.guardian_set(ds)
                if current is not None and current.index_of(self.account.address):
                    self._guarded[ds] = current
                else:
                    self._guarded.pop(ds, None)
            self._guard_block = head + 1
        return dict(self._guarded)

    async def tick(self) -> list[PieceDecision]:
        state = self._load()
        loaded = dict(state)
        head = await self.chain.block_number()
        guarded = await self._refresh_guarded(head)
        pending = set(state["pending"])
        while state["next_block"] <= head:
            upto = min(head, state["next_block"] + MAX_RANGE - 1)
            for event in await self.chain.purchases(state["next_block"], upto):
                pending.add(int(event["licenseId"]))
            state["next_block"] = upto + 1
        decided: list[PieceDecision] = []
        for license_id in sorted(pending) if guarded else ():  # guarding nothing yet: only keep the list
            try:
                decision = await self.handle(license_id, guarded)
            except TRANSIENT:
                raise
            except Exception as err:  # one broken license must never stop the agent
                log.exception("license %d: unexpected error", license_id)
                decision = PieceDecision(license_id, 0, "refused", f"error: {err!r}")
            if decision is None or decision.final:
                pending.discard(license_id)
            if decision is not None and decision.outcome != "waiting":
                if self._last.get(license_id) != decision:  # log a decision once, not every round
                    log.info(
                        "license %d (dataset %d): %s %s",
                        license_id,
                        decision.dataset_id,
                        decision.outcome,
                        decision.reason,
                    )
                self._last[license_id] = decision
                decided.append(decision)
        state["pending"] = sorted(pending)
        if state != loaded:  # a round with nothing new leaves the file alone
            self._save(state)
        self.decisions.extend(decided)
        return decided

    async def handle(self, license_id: int, guarded: dict[int, GuardianSet] | None = None) -> PieceDecision | None:
        """Decide one license: None once it needs nothing more from this guardian and is not its
        business (not pending, dataset not guarded by it); "waiting" while the dataset is unguarded
        (its owner may name this guardian later)."""
        lic = await self.chain.get_license(license_id)
        guarded = await self.chain.guarded_datasets(self.account.address) if guarded is None else guarded
        gset = guarded.get(lic.dataset_id)
        if gset is None:
            pending = lic.status == LicenseStatus.PENDING
            return PieceDecision(license_id, lic.dataset_id, "waiting", "not guarded by me") if pending else None

        def decide(outcome: str, reason: str = "", *, final: bool = False) -> PieceDecision:
            return PieceDecision(license_id, lic.dataset_id, outcome, reason, final)

        if lic.status != LicenseStatus.PENDING:
            return decide("done", f"license is {lic.status.name.lower()}", final=True)
        index = gset.index_of(self.account.address)
        state = await self.chain.license_pieces(license_id)
        if state.epoch == gset.epoch and index in state.banned:
            return decide("done", "my piece was proven bad for this license", final=True)
        if state.epoch == gset.epoch and index in state.delivered:
            return decide("waiting", "my piece is in")  # kept: a piece dispute may ask again
        # defence in depth: our own reading of the chain, then the contract's
        if await self.chain.consent_revoked_at(lic.dataset_id):
            return decide("refused", "consent has been revoked", final=True)
        terms = await self.chain.get_terms(lic.dataset_id)
        if not terms.allows(Purpose(lic.purpose)):
            return decide("refused", f"the terms do not allow {Purpose(lic.purpose).name.lower()}", final=True)
        now = await self.chain.timestamp()
        if now + self.margin > lic.delivery_deadline:
            return decide("refused", "too close to (or past) the delivery deadline", final=True)
        if not await self.chain.is_servable(lic.dataset_id):
            return decide("refused", "the dataset is not servable now")
        if not await self.chain.may_release(license_id):
            return decide("refused", "the contract says the license may not be served (mayRelease)")
        piece = await self.my_piece(gset)
        if piece is None:
            return decide("refused", "my piece of this epoch is unusable", final=True)
        buyer_key = await self.chain.buyer_key(license_id)
        sealed = pieces.seal_to_buyer(piece, buyer_key, await self.chain.delivery_context(license_id))
        try:
            await self.chain.deliver_key_piece(self.account, license_id, index, sealed)
        except (errors.ConsentError, errors.StateError, errors.AccessDenied) as err:
            return decide("refused", str(err))
        return decide("delivered", f"piece {index} of epoch {gset.epoch}")
