"""Typed views of ``DataPools`` records (frozen values decoded from ABI tuples) and the two key seals
of a pool, the Python half of ``DataPools.contributionMask`` and ``DataPools.deliveryMask``:

    contributor:  s random, seal S = s*G, c = key XOR contributionMask(pool, dataset, s*A)
                  (A = the pool's key-release point)                  -> contribute(pool, dataset, S, c)
    key release:  key = c XOR contributionMask(pool, dataset, a*S)    (a = the release's secret)
                  r random, R = r*G, d = key XOR deliveryMask(license, contribution, r*B)
                                                                      -> deliverKey(license, contribution, R, d)
    buyer:        key = d XOR deliveryMask(license, contribution, b*R), checked against the dataset's
                  key commitment; wrong -> dispute(license, contribution, b, R, d)

Both pads are keccak256 over a domain tag, the chain id, the DataPools address and the ids, so a seal
opens for one pool and dataset (or one license and contribution) of one deployment only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils.crypto import keccak

from . import delivery
from .terms import Purpose

SCALE = 10**36  # DataPools.SCALE: revenue per unit of weight is kept in these units
MAX_FEE_BPS = 10_000
CONTRIBUTION_SEAL_TAG = keccak(b"datasov/pool-contribution-seal/v1")
POOL_DELIVERY_TAG = keccak(b"datasov/pool-key-delivery/v1")


class ContributionStatus(IntEnum):
    NONE = 0
    PENDING = 1
    ACCEPTED = 2
    REJECTED = 3
    WITHDRAWN = 4


@dataclass(frozen=True, slots=True)
class Pool:
    pool_id: int
    curator: str
    key_agent: str
    payment_token: str
    curator_fee_bps: int
    epoch: int
    members: int
    created_at: int
    price: int
    total_weight: int
    acc_per_weight: int
    carry: int
    curator_owed: int
    revenue: int
    agent_key: bytes  # 64-byte BN254 point contributors seal their data keys to
    rules_hash: bytes

    @classmethod
    def from_abi(cls, pool_id: int, t: Any) -> Pool:
        (curator, agent, token, fee, epoch, members, created, price, weight, acc, carry, owed, revenue) = t[:13]
        key = delivery.encode_point(int(t[13]), int(t[14]))
        return cls(
            pool_id,
            curator,
            agent,
            token,
            fee,
            epoch,
            members,
            created,
            price,
            weight,
            acc,
            carry,
            owed,
            revenue,
            key,
            bytes(t[15]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pool_id": self.pool_id,
            "curator": self.curator,
            "key_agent": self.key_agent,
            "payment_token": self.payment_token,
            "price": str(self.price),
            "curator_fee_bps": self.curator_fee_bps,
            "members": self.members,
            "total_weight": str(self.total_weight),
            "epoch": self.epoch,
            "revenue": str(self.revenue),
            "curator_owed": str(self.curator_owed),
            "rules_hash": "0x" + self.rules_hash.hex(),
        }


@dataclass(frozen=True, slots=True)
class Contribution:
    contribution_id: int
    pool_id: int
    dataset_id: int
    contributor: str
    status: ContributionStatus
    accepted_epoch: int
    withdrawn_epoch: int
    contributed_at: int
    weight: int
    acc_at_entry: int
    credit: int
    claimed: int
    sealed_key_hash: bytes

    @classmethod
    def from_abi(cls, contribution_id: int, t: Any) -> Contribution:
        pool, dataset, contributor, status, accepted, withdrawn, at, weight, entry, credit, claimed, seal = t
        return cls(
            contribution_id,
            pool,
            dataset,
            contributor,
            ContributionStatus(status),
            accepted,
            withdrawn,
            at,
            weight,
            entry,
            credit,
            claimed,
            bytes(seal),
        )

    def in_snapshot(self, epoch: int) -> bool:
        """The contract's rule: accepted at or before ``epoch``, not withdrawn by then."""
        accepted, withdrawn = self.accepted_epoch, self.withdrawn_epoch
        return accepted != 0 and accepted <= epoch and (withdrawn == 0 or withdrawn > epoch)

    def to_json(self) -> dict[str, Any]:
        return {
            "contribution_id": self.contribution_id,
            "pool_id": self.pool_id,
            "dataset_id": self.dataset_id,
            "contributor": self.contributor,
            "status": self.status.name.lower(),
            "weight": str(self.weight),
            "claimed": str(self.claimed),
        }


@dataclass(frozen=True, slots=True)
class PoolLicense:
    license_id: int
    pool_id: int
    buyer: str
    purpose: Purpose
    revocable: bool
    snapshot_epoch: int
    members: int
    purchased_at: int
    expires_at: int
    price: int
    total_weight: int
    buyer_key_hash: bytes

    @classmethod
    def from_abi(cls, license_id: int, t: Any) -> PoolLicense:
        pool, buyer, purpose, revocable, epoch, members, at, expires, price, weight, key_hash = t
        return cls(
            license_id,
            pool,
            buyer,
            Purpose(purpose),
            bool(revocable),
            epoch,
            members,
            at,
            expires,
            price,
            weight,
            bytes(key_hash),
        )


def _address(address: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise delivery.DeliveryError(f"{address} is not an address")
    return raw


def contribution_mask(shared: bytes, *, chain_id: int, pools: str, pool_id: int, dataset_id: int) -> bytes:
    """``DataPools.contributionMask(pool_id, dataset_id, S)`` for the shared point ``shared``."""
    head = CONTRIBUTION_SEAL_TAG + chain_id.to_bytes(32, "big") + bytes(12) + _address(pools)
    return keccak(head + pool_id.to_bytes(32, "big") + dataset_id.to_bytes(32, "big") + shared)


def delivery_mask(shared: bytes, *, chain_id: int, pools: str, license_id: int, contribution_id: int) -> bytes:
    """``DataPools.deliveryMask(license_id, contribution_id, S)`` for the shared point ``shared``."""
    head = POOL_DELIVERY_TAG + chain_id.to_bytes(32, "big") + bytes(12) + _address(pools)
    return keccak(head + license_id.to_bytes(32, "big") + contribution_id.to_bytes(32, "big") + shared)


def _mul(point: bytes, scalar: int) -> bytes:
    x, y = delivery.check_point(point)
    from py_ecc.fields import optimized_bn128_FQ as FQ  # only where a seal is made or opened
    from py_ecc.optimized_bn128.optimized_curve import multiply, normalize

    rx, ry = normalize(multiply((FQ(x), FQ(y), FQ(1)), scalar))
    return delivery.encode_point(int(rx), int(ry))


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def seal_to(data_key: bytes, point: bytes, pad: Any) -> delivery.Sealed:
    """Seal a 32-byte key to ``point``; ``pad(shared)`` is one of the masks above, bound to its ids."""
    if len(data_key) != delivery.KEY_SIZE:
        raise delivery.DeliveryError(f"a data key is {delivery.KEY_SIZE} bytes")
    delivery.check_point(point)
    r = delivery.new_secret()
    return delivery.Sealed(delivery.public_key(r), _xor(data_key, pad(_mul(point, r))))


def open_with(sealed: delivery.Sealed, secret: int, pad: Any) -> bytes:
    """The key a seal carries for the holder of ``secret`` (unchecked: compare it with the
    dataset's key commitment)."""
    if not 0 < secret < delivery.N:
        raise delivery.InvalidPoint("a delivery secret is an integer in [1, n)")
    if len(sealed.cipher) != delivery.KEY_SIZE:
        raise delivery.DeliveryError(f"a sealed key is {delivery.KEY_SIZE} bytes")
    return _xor(sealed.cipher, pad(_mul(sealed.point, secret)))
