"""Typed views of on-chain records and of a deployment (frozen values, decoded from ABI tuples)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from .errors import DeploymentError
from .terms import Purpose


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where the datasov contracts live on one chain."""

    chain_id: int
    registry: str
    license_manager: str
    storage_market: str
    token: str
    deployed_block: int
    epoch_blocks: int
    delivery_window: int
    dispute_window: int = 0  # 0 in deployment files older than verifiable delivery
    key_guardians: str = ""  # "" in deployment files older than key guardians (issue 17)
    data_pools: str = ""  # "" in deployment files older than data pools (contracts/pools.py)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, **asdict(self)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Deployment:
        if obj.get("version") != 1:
            raise DeploymentError(f"unsupported deployment file version {obj.get('version')!r}")
        try:
            return cls(**{k: v for k, v in obj.items() if k != "version"})
        except TypeError as err:
            raise DeploymentError(f"malformed deployment file: {err}") from err

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError) as err:
            raise DeploymentError(f"cannot read deployment file {path}: {err}") from err


@dataclass(frozen=True, slots=True)
class Dataset:
    dataset_id: int
    owner: str
    key_agent: str
    payment_token: str
    registered_at: int
    plaintext_size: int
    share_size: int
    leaf_size: int
    k: int
    n: int
    terms_version: int
    price: int
    manifest_hash: bytes
    commitment_root: bytes
    key_commitment: bytes
    key_salt: bytes

    @classmethod
    def from_abi(cls, dataset_id: int, t: Any) -> Dataset:
        return cls(
            dataset_id,
            t[0],
            t[1],
            t[2],
            t[3],
            t[4],
            t[5],
            t[6],
            t[7],
            t[8],
            t[9],
            t[10],
            bytes(t[11]),
            bytes(t[12]),
            bytes(t[13]),
            bytes(t[14]),
        )


class LicenseStatus(IntEnum):
    NONE = 0
    PENDING = 1
    DELIVERED = 2  # key delivered; ``License.paid`` once the owner claimed the escrow
    REFUNDED = 3  # no key in time, or consent revoked before delivery
    REJECTED = 4  # the buyer proved the delivered key wrong on-chain: refunded


@dataclass(frozen=True, slots=True)
class License:
    license_id: int
    dataset_id: int
    buyer: str
    purpose: Purpose
    status: LicenseStatus
    revocable: bool
    paid: bool
    terms_version: int
    purchased_at: int
    delivery_deadline: int
    delivered_at: int
    duration: int
    expires_at: int
    payment_token: str
    price: int
    buyer_key_hash: bytes  # keccak256 of the buyer's BN254 key (the key is in LicensePurchased)
    terms_hash: bytes
    delivery_hash: bytes  # keccak256 of what was delivered (it is in KeyDelivered); zero before

    @classmethod
    def from_abi(cls, license_id: int, t: Any) -> License:
        return cls(
            license_id,
            t[0],
            t[1],
            Purpose(t[2]),
            LicenseStatus(t[3]),
            bool(t[4]),
            bool(t[5]),
            t[6],
            t[7],
            t[8],
            t[9],
            t[10],
            t[11],
            t[12],
            t[13],
            bytes(t[14]),
            bytes(t[15]),
            bytes(t[16]),
        )


@dataclass(frozen=True, slots=True)
class Operator:
    stake: int
    active_shares: int
    registered: bool
    exit_epoch: int = 0  # 0 = not leaving; else the first epoch its stake may be withdrawn

    @property
    def leaving(self) -> bool:
        return self.exit_epoch != 0


PENDING_ROOT = (1).to_bytes(32, "big")
"""StorageMarket.PENDING_ROOT: the commitment root of a draft deal until it is committed."""


@dataclass(frozen=True, slots=True)
class Deal:
    deal_id: int
    dataset_id: int
    owner: str
    commitment_root: bytes
    leaf_count: int
    leaf_size: int
    last_leaf_size: int
    n: int
    start_epoch: int
    end_epoch: int
    settled: bool
    fee_per_share_epoch: int
    escrow: int
    paid: int
    k: int = 0
    """Shares needed to rebuild the dataset."""
    healthy: int = 0
    """Shares accepted by their provider and not faulty (0 once settled)."""

    @property
    def committed(self) -> bool:
        """False for a draft deal (``openDraftDeal``) whose dataset and root are not yet committed."""
        return self.commitment_root != PENDING_ROOT

    @property
    def share_size(self) -> int:
        """Bytes in each share of the deal."""
        return (self.leaf_count - 1) * self.leaf_size + self.last_leaf_size

    @classmethod
    def from_abi(cls, deal_id: int, t: Any) -> Deal:
        (
            root,
            leaf_count,
            leaf_size,
            last_leaf,
            n,
            start,
            end,
            settled,
            k,
            healthy,
            owner,
            dataset_id,
            fee,
            escrow,
            paid,
        ) = t
        return cls(
            deal_id,
            dataset_id,
            owner,
            bytes(root),
            leaf_count,
            leaf_size,
            last_leaf,
            n,
            start,
            end,
            bool(settled),
            fee,
            escrow,
            paid,
            k,
            healthy,
        )


@dataclass(frozen=True, slots=True)
class Share:
    provider: str
    active_from: int
    """First epoch the provider must prove; 0 = not accepted yet."""
    last_proven: int
    """Last proven epoch + 1; 0 = none."""
    unclaimed: int
    """Proven epochs whose fees are not yet claimed."""
    faulty: bool
    previous_proven: bool = False
    """The epoch before ``last_proven - 1`` was proven too."""

    @property
    def accepted(self) -> bool:
        return self.active_from != 0

    def due(self, epoch: int, end_epoch: int) -> bool:
        """Was a proof owed in ``epoch`` (``StorageMarket.isDue``; ``end_epoch``: the deal's)?"""
        return self.active_from != 0 and not self.faulty and self.active_from <= epoch < end_epoch

    def proven(self, epoch: int) -> bool:
        """Was ``epoch`` proven (``StorageMarket.isProven``: the last two proven epochs are known)?"""
        return self.last_proven == epoch + 1 or (self.previous_proven and self.last_proven == epoch + 2)


@dataclass(frozen=True, slots=True)
class ProofDuty:
    """A share in one epoch, as a prover sees it (``StorageMarket.proofDuty``)."""

    provider: str
    owed: bool
    """Due in the epoch (accepted, not faulty, deal running) and not proven yet."""
    leaf: int
    """The challenged leaf when owed (0 otherwise)."""


@dataclass(frozen=True, slots=True)
class StorageProof:
    """One storage proof (``contracts.proofs.encode`` packs it for ``proveStorage``; the share root
    is checked locally by the prover and recomputed on-chain, not sent)."""

    deal_id: int
    share_index: int
    epoch: int
    leaf: bytes
    leaf_proof: tuple[bytes, ...]
    share_root: bytes
    share_proof: tuple[bytes, ...]
