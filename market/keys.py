"""The owner's key agent: release a dataset's key to each paying licensee while consent stands.

It follows ``LicensePurchased`` for the datasets its account owns, and finds each data key in
the keystore by the dataset's manifest hash (ids are per chain; the hash is not). For each purchase it
checks, on-chain and at that moment, that the license is still pending, its delivery deadline has
not passed, consent is not revoked and the dataset's terms allow the purchase's purpose; only then
does it seal the data key to the buyer's X25519 key and call ``deliverKey``.

Restarts: the last block it has fully handled is kept in ``agent.json`` (written atomically). After
a restart it scans from there; a purchase seen twice is skipped because the chain says it is no
longer pending, so nothing is missed and nothing is delivered twice.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from erasure import envelope

from . import errors
from .chain import Chain
from .keystore import Keystore, KeystoreError
from .loop import Ticking
from .models import LicenseStatus
from .terms import Purpose

log = logging.getLogger("datasov.agent")

STATE_FILE = "agent.json"
MAX_RANGE = 2000  # blocks per log query


@dataclass(frozen=True, slots=True)
class Decision:
    license_id: int
    dataset_id: int
    buyer: str
    outcome: str  # "delivered" | "refused" | "skipped"
    reason: str = ""


class KeyAgent(Ticking):
    """``await agent.tick()`` handles the blocks up to now; ``await agent.run()`` keeps following."""

    def __init__(self, chain: Chain, keystore: Keystore, *, home: Path, poll: float = 1.0) -> None:
        self.chain = chain
        self.keystore = keystore
        self.account = keystore.account
        self.state_path = home / STATE_FILE
        self.poll = poll
        self.decisions: list[Decision] = []
        self._where = ""

    async def _locate(self) -> None:
        """Name this chain and deployment (chain id, contract, hash of the deployment block): two
        local chains can share an id and addresses, never that block hash."""
        if not self._where:
            d = self.chain.deployment
            block = await self.chain.w3.eth.get_block(d.deployed_block)
            self._where = f"{d.chain_id}:{d.license_manager.lower()}:{bytes(block['hash']).hex()}"

    def _checkpoint(self) -> int:
        """The first block not yet handled (on this chain and these contracts)."""
        try:
            state = json.loads(self.state_path.read_text())
            if state.get("deployment", self._where) != self._where:
                return self.chain.deployment.deployed_block  # another network: start from its beginning
            return int(state["next_block"])
        except FileNotFoundError:
            return self.chain.deployment.deployed_block
        except (ValueError, KeyError, TypeError) as err:
            raise errors.MarketError(f"{self.state_path} is malformed; delete it to rescan from the start") from err

    def _save(self, next_block: int) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": 1, "deployment": self._where, "next_block": next_block}))
        os.replace(tmp, self.state_path)

    async def tick(self) -> list[Decision]:
        """Handle every purchase mined since the last checkpoint; returns what was decided."""
        await self._locate()
        start = self._checkpoint()
        head = await self.chain.block_number()
        owners: dict[int, str] = {}
        decided: list[Decision] = []
        block = start
        while block <= head:
            upto = min(head, block + MAX_RANGE - 1)
            for event in await self.chain.purchases(block, upto):
                dataset_id = int(event["datasetId"])
                if dataset_id not in owners:
                    owners[dataset_id] = (await self.chain.get_dataset(dataset_id)).owner.lower()
                if owners[dataset_id] == self.account.address.lower():
                    decided.append(await self.handle(int(event["licenseId"])))
            self._save(upto + 1)
            block = upto + 1
        self.decisions.extend(decided)
        return decided

    async def handle(self, license_id: int) -> Decision:
        """Check consent for one license and deliver its key if it stands."""
        lic = await self.chain.get_license(license_id)

        def decide(outcome: str, reason: str = "") -> Decision:
            if outcome != "skipped":
                log.info("license %d (dataset %d): %s %s", license_id, lic.dataset_id, outcome, reason)
            return Decision(license_id, lic.dataset_id, lic.buyer, outcome, reason)

        if lic.status != LicenseStatus.PENDING:
            return decide("skipped", f"license is {lic.status.name.lower()}")
        if await self.chain.consent_revoked_at(lic.dataset_id):
            return decide("refused", "consent has been revoked")
        terms = await self.chain.get_terms(lic.dataset_id)
        if not terms.allows(Purpose(lic.purpose)):
            return decide("refused", f"the terms do not allow {Purpose(lic.purpose).name.lower()}")
        if await self.chain.timestamp() > lic.delivery_deadline:
            return decide("refused", "the delivery deadline has passed (the buyer can take a refund)")
        dataset = await self.chain.get_dataset(lic.dataset_id)
        try:
            data_key = self.keystore.data_key_for(dataset.manifest_hash)
        except KeystoreError:
            return decide("skipped", "this keystore does not hold the dataset's key")
        sealed = envelope.seal_key(data_key, lic.buyer_key)
        try:
            await self.chain.deliver_key(self.account, license_id, sealed)
        except (errors.ConsentError, errors.StateError) as err:  # revoked or expired since we looked
            return decide("refused", str(err))
        return decide("delivered")
