"""Data pools off-chain: the curator's, the contributor's and the lab's flows (``DataPools``).

    curator:      create(): a fresh BN254 key-release key pair in the curator's keystore, the pool on-chain
                  accept / reject with a weight (the contract refuses a curator accepting itself)
    contributor:  contribute(): its own published dataset, the data key sealed to the pool's release key
                  (the contributor need not be online for sales); withdraw at any time
    release:      release(): for one pool license, each contribution the license covers (in its
                  snapshot, consent standing or non-revocable terms) gets its key opened with the release
                  secret, checked against the dataset's key commitment, sealed to the buyer and delivered;
                  every refusal is per contribution and named
    lab:          buy(): a per-license key pair in the lab's keystore, then purchase;
                  fetch(): one folder per contribution (``contribution-<id>``), each verified and decrypted
                  like a dataset of its own (:func:`market.buyer.fetch_dataset`);
                  receipt(): the consent receipt, every contribution with contributor, weight, commitment

The release key's secret is kept in the curator's keystore as a BN254 key pair made by
``Keystore.new_buyer_key`` (the same scheme and storage; its "dataset" field is 0).

Reading seam: :func:`fetch` writes one folder per contribution with :func:`market.buyer.fetch_dataset`;
a random-access reader (``datasov://``) can list the same contributions with :func:`covered` and
open each with :func:`contribution_key`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts import delivery, errors
from contracts.chain import Chain
from contracts.pool_models import Contribution, ContributionStatus, open_with, seal_to
from contracts.terms import LicenseTerms, Purpose
from erasure import envelope
from erasure.errors import ErasureError
from storage_node.client import NodeClient

from . import buyer
from .directory import Directory
from .errors import MarketError
from .keystore import Keystore, KeystoreError


class PoolError(MarketError):
    """A pool flow could not go on (no key delivered yet, a key that does not open...)."""


@dataclass(frozen=True, slots=True)
class Release:
    """What the key release decided for one contribution of one license."""

    contribution_id: int
    outcome: str  # "delivered" | "already delivered" | "refused"
    reason: str = ""


async def create(
    chain: Chain,
    keystore: Keystore,
    *,
    terms: LicenseTerms,
    price: int,
    curator_fee_bps: int,
    rules: str,
    key_agent: str | None = None,
) -> int:
    """Open a pool curated by the keystore's account; its release key pair is saved first."""
    release_key = keystore.new_buyer_key(0)
    return await chain.create_pool(
        keystore.account,
        terms=terms,
        price=price,
        curator_fee_bps=curator_fee_bps,
        rules=rules,
        agent_key=release_key,
        key_agent=key_agent,
    )


async def contribute(chain: Chain, keystore: Keystore, pool_id: int, dataset_id: int) -> int:
    """Contribute one of the keystore's own published datasets (its data key sealed to the pool)."""
    data_key = keystore.dataset_key(dataset_id).data_key
    return await chain.contribute(keystore.account, pool_id, dataset_id, data_key)


async def covered(chain: Chain, license_id: int) -> list[Contribution]:
    """The contributions a pool license covers now (in its snapshot; consented unless non-revocable)."""
    lic = await chain.get_pool_license(license_id)
    return [c for c in await chain.pool_contributions(lic.pool_id) if await chain.covers(license_id, c.contribution_id)]


async def release(chain: Chain, keystore: Keystore, license_id: int) -> list[Release]:
    """Deliver every covered contribution's key for one pool license (the curator or its key agent)."""
    lic = await chain.get_pool_license(license_id)
    pool = await chain.get_pool(lic.pool_id)
    secret = keystore.buyer_secret(pool.agent_key)
    buyer_key = await chain.pool_buyer_key(license_id)
    done = await chain.pool_deliveries(license_id)
    out: list[Release] = []
    for c in await chain.pool_contributions(lic.pool_id):
        cid = c.contribution_id
        if cid in done:
            out.append(Release(cid, "already delivered"))
            continue
        if not await chain.covers(license_id, cid):
            if c.in_snapshot(lic.snapshot_epoch):
                out.append(Release(cid, "refused", "its contributor withdrew consent (revocable terms)"))
            continue  # not part of this license at all
        dataset = await chain.get_dataset(c.dataset_id)
        try:
            key = await chain.open_contribution_seal(cid, secret)
            if not envelope.check_key_commitment(key, dataset.key_salt, dataset.key_commitment):
                out.append(Release(cid, "refused", "the contributor's sealed key does not match its commitment"))
                continue
            sealed = seal_to(key, buyer_key, chain.delivery_pad(license_id, cid))
            await chain.deliver_pool_key(keystore.account, license_id, cid, sealed)
        except (errors.ContractRevert, delivery.DeliveryError, ErasureError) as err:
            out.append(Release(cid, "refused", str(err)))
            continue
        out.append(Release(cid, "delivered"))
    return out


async def buy(chain: Chain, keystore: Keystore, pool_id: int, purpose: Purpose, *, max_price: int | None = None) -> int:
    """License a pool as it stands; the per-license key pair is saved before the purchase is sent."""
    public = keystore.new_buyer_key(0)
    return await chain.purchase_pool(keystore.account, pool_id, purpose, public, max_price=max_price)


async def contribution_key(chain: Chain, keystore: Keystore, license_id: int, contribution_id: int) -> bytes:
    """The data key delivered to this lab for one contribution, checked against its commitment."""
    sealed = (await chain.pool_deliveries(license_id)).get(contribution_id)
    if sealed is None:
        raise PoolError(f"no key delivered yet for contribution {contribution_id} of pool license {license_id}")
    try:
        secret = keystore.buyer_secret(await chain.pool_buyer_key(license_id))
    except KeystoreError as err:
        raise PoolError(f"pool license {license_id} was not bought from this keystore") from err
    c = await chain.get_contribution(contribution_id)
    dataset = await chain.get_dataset(c.dataset_id)
    key = open_with(sealed, secret, chain.delivery_pad(license_id, contribution_id))
    if not envelope.check_key_commitment(key, dataset.key_salt, dataset.key_commitment):
        raise PoolError(
            f"the key delivered for contribution {contribution_id} does not match its commitment "
            f"(prove it on-chain with dispute_pool_delivery)"
        )
    return key


@dataclass
class PoolFetch:
    license_id: int
    folders: dict[int, str] = field(default_factory=dict)  # contribution id -> folder
    bytes_written: int = 0
    missing: dict[int, str] = field(default_factory=dict)  # contribution id -> why not fetched

    def to_json(self) -> dict[str, Any]:
        return {
            "license_id": self.license_id,
            "folders": {str(k): v for k, v in self.folders.items()},
            "bytes": self.bytes_written,
            "missing": {str(k): v for k, v in self.missing.items()},
        }


async def fetch(
    chain: Chain, keystore: Keystore, directory: Directory, client: NodeClient, license_id: int, out: Path
) -> PoolFetch:
    """Fetch a pool license as one dataset: ``out/contribution-<id>/`` per covered contribution,
    each verified against its own commitment and decrypted with its own delivered key."""
    if not await chain.is_pool_license_valid(license_id):
        raise PoolError(f"pool license {license_id} has expired")
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=False)
    report = PoolFetch(license_id)
    for c in await covered(chain, license_id):
        cid = c.contribution_id
        try:
            key = await contribution_key(chain, keystore, license_id, cid)
        except PoolError as err:
            report.missing[cid] = str(err)
            continue
        folder = out / f"contribution-{cid}"
        one = await buyer.fetch_dataset(chain, directory, client, c.dataset_id, key, folder, license_id=license_id)
        report.folders[cid] = folder.name
        report.bytes_written += one.bytes_written
    return report


async def receipt(chain: Chain, license_id: int) -> dict[str, Any]:
    """The consent receipt of a pool license: the pool, the snapshot and every contribution in it
    with its contributor, weight, commitment root and manifest hash, and whether it is still covered."""
    lic = await chain.get_pool_license(license_id)
    pool = await chain.get_pool(lic.pool_id)
    terms = await chain.get_pool_terms(lic.pool_id)
    rows = []
    for c in await chain.pool_contributions(lic.pool_id):
        if not c.in_snapshot(lic.snapshot_epoch):
            continue
        dataset = await chain.get_dataset(c.dataset_id)
        rows.append(
            {
                "contribution_id": c.contribution_id,
                "dataset_id": c.dataset_id,
                "contributor": c.contributor,
                "weight": str(c.weight),
                "commitment_root": "0x" + dataset.commitment_root.hex(),
                "manifest_hash": "0x" + dataset.manifest_hash.hex(),
                "consent_standing": c.status == ContributionStatus.ACCEPTED,
                "covered": await chain.covers(license_id, c.contribution_id),
            }
        )
    return {
        "version": 1,
        "kind": "datasov/pool-consent-receipt",
        "chain_id": chain.deployment.chain_id,
        "data_pools": chain.deployment.data_pools,
        "license_id": license_id,
        "pool": pool.to_json(),
        "buyer": lic.buyer,
        "purpose": lic.purpose.name.lower(),
        "purchased_at": lic.purchased_at,
        "expires_at": lic.expires_at,
        "price": str(lic.price),
        "snapshot_epoch": lic.snapshot_epoch,
        "snapshot_weight": str(lic.total_weight),
        "terms": terms.to_json(),
        "survives_withdrawal": not lic.revocable,
        "contributions": rows,
    }
