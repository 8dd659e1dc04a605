"""Typed calls to ``DatasetRegistry``: datasets, their offers (price, terms), key agents and ownership."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .connection import Connection
from .models import Dataset
from .terms import LicenseTerms

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True, slots=True)
class Registration:
    """What ``DatasetRegistry.register`` records for a dataset (its ``Registration`` struct)."""

    manifest_hash: bytes
    commitment_root: bytes
    key_commitment: bytes
    key_salt: bytes
    plaintext_size: int
    share_size: int
    leaf_size: int
    k: int
    n: int
    price: int
    payment_token: str | None = None  # None: the deployment's token
    key_agent: str | None = None

    def to_abi(self, default_token: str) -> tuple[Any, ...]:
        return (
            self.manifest_hash,
            self.commitment_root,
            self.key_commitment,
            self.key_salt,
            self.plaintext_size,
            self.share_size,
            self.leaf_size,
            self.k,
            self.n,
            self.price,
            self.payment_token or default_token,
            self.key_agent or ZERO_ADDRESS,
        )


class RegistryCalls(Connection):
    """The ``DatasetRegistry`` wrapper (mixed into :class:`contracts.chain.Chain`)."""

    async def register_dataset(
        self,
        owner: LocalAccount,
        *,
        manifest_hash: bytes,
        commitment_root: bytes,
        key_commitment: bytes,
        key_salt: bytes,
        plaintext_size: int,
        share_size: int,
        leaf_size: int,
        k: int,
        n: int,
        price: int,
        terms: LicenseTerms,
        payment_token: str | None = None,
        key_agent: str | None = None,
    ) -> int:
        """Register a dataset; returns its id."""
        registration = Registration(
            manifest_hash,
            commitment_root,
            key_commitment,
            key_salt,
            plaintext_size,
            share_size,
            leaf_size,
            k,
            n,
            price,
            payment_token,
            key_agent,
        )
        return await self.register(owner, registration, terms)

    async def register(self, owner: LocalAccount, registration: Registration, terms: LicenseTerms) -> int:
        """Register a dataset; returns its id."""
        fn = self.registry.functions.register(registration.to_abi(self.deployment.token), terms.to_abi())
        receipt = await self.send(fn, owner)
        event = self.tx.event(self.registry, "DatasetRegistered", receipt)
        return int(event["args"]["datasetId"])

    async def update_offer(
        self, owner: LocalAccount, dataset_id: int, *, price: int, terms: LicenseTerms, payment_token: str | None = None
    ) -> None:
        fn = self.registry.functions.updateOffer(
            dataset_id, price, payment_token or self.deployment.token, terms.to_abi()
        )
        await self.send(fn, owner)

    async def set_key_agent(self, owner: LocalAccount, dataset_id: int, agent: str) -> None:
        await self.send(self.registry.functions.setKeyAgent(dataset_id, agent), owner)

    async def transfer_dataset_ownership(self, owner: LocalAccount, dataset_id: int, new_owner: str) -> None:
        """Offer the dataset to ``new_owner`` (it takes effect when that account accepts)."""
        await self.send(self.registry.functions.transferDatasetOwnership(dataset_id, new_owner), owner)

    async def accept_dataset_ownership(self, new_owner: LocalAccount, dataset_id: int) -> None:
        """Take over a dataset offered to this account; the old key agent is dropped."""
        await self.send(self.registry.functions.acceptDatasetOwnership(dataset_id), new_owner)

    async def pending_dataset_owner(self, dataset_id: int) -> str:
        return str(await self.call(self.registry.functions.pendingOwnerOf(dataset_id)))

    async def dataset_by_manifest(self, registrant: str, manifest_hash: bytes) -> int:
        """The dataset ``registrant`` registered with this manifest hash (0 if none)."""
        return int(await self.call(self.registry.functions.datasetByManifest(registrant, manifest_hash)))

    async def get_dataset(self, dataset_id: int) -> Dataset:
        return Dataset.from_abi(dataset_id, await self.call(self.registry.functions.getDataset(dataset_id)))

    async def get_terms(self, dataset_id: int) -> LicenseTerms:
        return LicenseTerms.from_abi(await self.call(self.registry.functions.getTerms(dataset_id)))

    async def datasets_of(self, owner: str) -> list[int]:
        """Ids of the datasets ``owner`` holds now, oldest first: those it registered or took over
        (two log reads), less those it handed on (one read of each candidate)."""
        registered = self.registry.events.DatasetRegistered().get_logs(
            from_block=self.deployment.deployed_block, argument_filters={"owner": owner}
        )
        received = self.registry.events.DatasetOwnerChanged().get_logs(
            from_block=self.deployment.deployed_block, argument_filters={"newOwner": owner}
        )
        logs = [log for found in await asyncio.gather(registered, received) for log in found]
        candidates = sorted({int(log["args"]["datasetId"]) for log in logs})
        held = await asyncio.gather(*(self.get_dataset(i) for i in candidates))
        return [d.dataset_id for d in held if d.owner.lower() == owner.lower()]

    async def dataset_count(self) -> int:
        return int(await self.call(self.registry.functions.datasetCount()))
