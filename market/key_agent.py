"""The owner's key agent: release a dataset's key to each paying licensee while consent stands.

It follows ``LicensePurchased`` for the datasets its account owns, and finds each data key in
the keystore by the dataset's manifest hash (ids are per chain; the hash is not). For each purchase it
checks, on-chain and at that moment, that the license is still pending, its delivery deadline is
at least ``margin`` seconds away, consent is not revoked, the dataset is servable (an active deal
holds at least k healthy shares), the dataset's terms allow the purchase's purpose, and that the
buyer's key is a valid BN254 point; only then does it encrypt
the data key to that point (:mod:`contracts.delivery`) and call ``deliverKey``. Once a delivery's
dispute window has closed it claims the payment (``claimPayment``).

The margin exists because a delivery that reverts still publishes the key in its calldata: sent
close to the deadline, it could be mined after it, revert, and leave the buyer with the key *and*
a refund. The agent would rather let such a license be refunded.

One purchase decides one license, never the agent: whatever a purchase holds (a bad key, a
dataset it cannot read, an unexpected error) ends in a logged "refused" or "skipped" decision for
that license alone. Only a chain that cannot be reached stops a round; it is retried from the
event it stopped at.

Restarts: the position after the last handled event (block, log index) is kept in ``agent.json``
(written atomically after every event), with the deliveries whose payment is still to claim. After
a restart it scans from there; a purchase seen twice is skipped because the chain says it is no
longer pending, so nothing is missed and nothing is delivered twice.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import delivery, errors
from contracts.chain import Chain
from contracts.loop import Ticking
from contracts.models import LicenseStatus
from contracts.terms import Purpose

from .errors import MarketError
from .keystore import Keystore, KeystoreError

log = logging.getLogger("datasov.agent")

STATE_FILE = "agent.json"
STATE_VERSION = 2
MAX_RANGE = 2000  # blocks per log query
MAX_MARGIN = 300  # seconds kept between a delivery and its deadline (at most a quarter of the window)
TRANSIENT = (errors.ChainUnavailable, errors.TransactionTimeout, OSError, TimeoutError)


def default_margin(delivery_window: int) -> int:
    return min(MAX_MARGIN, delivery_window // 4)


@dataclass(frozen=True, slots=True)
class Decision:
    license_id: int
    dataset_id: int
    buyer: str
    outcome: str  # "delivered" | "refused" | "skipped" | "claimed"
    reason: str = ""


class KeyAgent(Ticking):
    """``await agent.tick()`` handles the blocks up to now; ``await agent.run()`` keeps following."""

    def __init__(
        self, chain: Chain, keystore: Keystore, *, home: Path, poll: float = 1.0, margin: int | None = None
    ) -> None:
        self.chain = chain
        self.keystore = keystore
        self.account = keystore.account
        self.state_path = home / STATE_FILE
        self.poll = poll
        self.margin = default_margin(chain.deployment.delivery_window) if margin is None else margin
        self.decisions: list[Decision] = []
        self._where = ""

    async def _locate(self) -> None:
        """Name this chain and deployment (chain id, contract, hash of the deployment block): two
        local chains can share an id and addresses, never that block hash."""
        if not self._where:
            d = self.chain.deployment
            block = await self.chain.w3.eth.get_block(d.deployed_block)
            self._where = f"{d.chain_id}:{d.license_manager.lower()}:{bytes(block['hash']).hex()}"

    def _load(self) -> dict[str, Any]:
        """Where to resume on this chain and these contracts: next block, next log index in it,
        and the deliveries still to claim (license id -> earliest claim time)."""
        fresh: dict[str, Any] = {"next_block": self.chain.deployment.deployed_block, "next_log": 0, "unclaimed": {}}
        try:
            state = json.loads(self.state_path.read_text())
            if state.get("deployment", self._where) != self._where:
                return fresh  # another network: start from its beginning
            return {
                "next_block": int(state["next_block"]),
                "next_log": int(state.get("next_log", 0)),
                "unclaimed": {str(int(k)): int(v) for k, v in dict(state.get("unclaimed", {})).items()},
            }
        except FileNotFoundError:
            return fresh
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise MarketError(f"{self.state_path} is malformed; delete it to rescan from the start") from err

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": STATE_VERSION, "deployment": self._where, **state}))
        os.replace(tmp, self.state_path)

    async def tick(self) -> list[Decision]:
        """Handle every purchase mined since the last checkpoint, then claim the payments whose
        dispute window has closed; returns what was decided."""
        await self._locate()
        state = self._load()
        head = await self.chain.block_number()
        owners: dict[int, str] = {}
        decided: list[Decision] = []
        try:
            while state["next_block"] <= head:
                block = state["next_block"]
                upto = min(head, block + MAX_RANGE - 1)
                for event in await self.chain.purchases(block, upto):
                    position = (int(event["blockNumber"]), int(event["logIndex"]))
                    if position < (block, state["next_log"]):
                        continue  # handled before a restart
                    decision = await self._on_purchase(event, owners)
                    if decision is not None:
                        decided.append(decision)
                        if decision.outcome == "delivered":
                            window = self.chain.deployment.dispute_window
                            state["unclaimed"][str(decision.license_id)] = await self.chain.timestamp() + window
                    state["next_block"], state["next_log"] = position[0], position[1] + 1
                    self._save(state)
                state["next_block"], state["next_log"] = upto + 1, 0
                self._save(state)
            decided.extend(await self._claim(state))
        finally:
            self.decisions.extend(decided)
        return decided

    async def _on_purchase(self, event: dict[str, Any], owners: dict[int, str]) -> Decision | None:
        """One purchase event, decided alone: None if it is not for one of our datasets."""
        try:
            license_id, dataset_id = int(event["licenseId"]), int(event["datasetId"])
        except (KeyError, TypeError, ValueError) as err:
            log.warning("ignoring a malformed purchase event: %s", err)
            return None
        try:
            if dataset_id not in owners:
                owners[dataset_id] = (await self.chain.get_dataset(dataset_id)).owner.lower()
            if owners[dataset_id] != self.account.address.lower():
                return None
            try:
                key = _event_key(event)
            except delivery.InvalidPoint as err:
                reason = f"invalid buyer key: {err}"
                return self._decided(license_id, dataset_id, str(event.get("buyer", "")), "refused", reason)
            return await self.handle(license_id, buyer_key=key)
        except TRANSIENT:
            raise  # the chain is unreachable: retry this event next round
        except errors.ContractRevert as err:
            return self._decided(license_id, dataset_id, str(event.get("buyer", "")), "refused", str(err))
        except Exception as err:  # one hostile or broken purchase must never stop the agent
            log.exception("license %d (dataset %d): unexpected error, refused", license_id, dataset_id)
            return self._decided(license_id, dataset_id, str(event.get("buyer", "")), "refused", f"error: {err!r}")

    def _decided(self, license_id: int, dataset_id: int, buyer: str, outcome: str, reason: str = "") -> Decision:
        if outcome != "skipped":
            log.info("license %d (dataset %d): %s %s", license_id, dataset_id, outcome, reason)
        return Decision(license_id, dataset_id, buyer, outcome, reason)

    async def handle(self, license_id: int, *, buyer_key: bytes | None = None) -> Decision:
        """Check consent for one license and deliver its key if it stands. ``buyer_key`` is the
        point from the purchase event (looked up if not given); it must hash to the license's."""
        lic = await self.chain.get_license(license_id)

        def decide(outcome: str, reason: str = "") -> Decision:
            return self._decided(license_id, lic.dataset_id, lic.buyer, outcome, reason)

        if lic.status != LicenseStatus.PENDING:
            return decide("skipped", f"license is {lic.status.name.lower()}")
        if await self.chain.consent_revoked_at(lic.dataset_id):
            return decide("refused", "consent has been revoked")
        if not await self.chain.is_servable(lic.dataset_id):
            return decide("refused", "the dataset is not servable (no active deal with k healthy shares)")
        terms = await self.chain.get_terms(lic.dataset_id)
        if not terms.allows(Purpose(lic.purpose)):
            return decide("refused", f"the terms do not allow {Purpose(lic.purpose).name.lower()}")
        now = await self.chain.timestamp()
        if now > lic.delivery_deadline:
            return decide("refused", "the delivery deadline has passed (the buyer can take a refund)")
        if now + self.margin > lic.delivery_deadline:
            return decide("refused", f"less than {self.margin} s to the delivery deadline: too late to deliver safely")
        if self.chain.deployment.key_guardians and not await self.chain.may_release(license_id):
            return decide("refused", "the contract says the license may not be served (mayRelease)")
        key = buyer_key if buyer_key is not None else await self.chain.buyer_key(license_id)
        try:
            if delivery.key_hash(key) != lic.buyer_key_hash:
                return decide("refused", "the purchase event's buyer key is not the license's")
        except delivery.InvalidPoint as err:
            return decide("refused", f"invalid buyer key: {err}")
        dataset = await self.chain.get_dataset(lic.dataset_id)
        try:
            data_key = self.keystore.data_key_for(dataset.manifest_hash)
        except KeystoreError:
            return decide("skipped", "this keystore does not hold the dataset's key")
        sealed = delivery.seal(data_key, key, await self.chain.delivery_context(license_id))
        try:
            await self.chain.deliver_key(self.account, license_id, sealed)
        except (errors.ConsentError, errors.StateError) as err:  # revoked or expired since we looked
            return decide("refused", str(err))
        return decide("delivered")

    async def _claim(self, state: dict[str, Any]) -> list[Decision]:
        """Claim the escrow of deliveries whose dispute window has closed."""
        out: list[Decision] = []
        now = await self.chain.timestamp()
        for lid, after in sorted(state["unclaimed"].items(), key=lambda kv: kv[1]):
            if after >= now:
                continue
            license_id = int(lid)
            try:
                lic = await self.chain.get_license(license_id)
                if lic.status == LicenseStatus.DELIVERED and not lic.paid:
                    await self.chain.claim_payment(self.account, license_id)
                    out.append(self._decided(license_id, lic.dataset_id, lic.buyer, "claimed"))
            except errors.DisputeWindowOpen:
                continue  # chain time is behind ours: next round
            except errors.ContractRevert as err:
                log.warning("license %d: payment not claimable: %s", license_id, err)
            del state["unclaimed"][lid]
            self._save(state)
        return out


def _event_key(event: dict[str, Any]) -> bytes:
    """The buyer's point from a purchase event; raises InvalidPoint if it is not one."""
    try:
        x, y = int(event["buyerKeyX"]), int(event["buyerKeyY"])
        point = delivery.encode_point(x, y)
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise delivery.InvalidPoint(f"malformed buyer key in the purchase event: {err}") from err
    delivery.check_point(point)
    return point
