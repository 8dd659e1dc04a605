"""Chain reads several commands share: the licenses of a buyer or of datasets, described for output."""

from __future__ import annotations

from typing import Any

from contracts.chain import Chain
from contracts.models import License, LicenseStatus

from .refusals import local_time


async def licenses(chain: Chain, *, buyer: str | None = None, dataset_ids: set[int] | None = None) -> list[License]:
    """Every license bought by ``buyer`` and/or for one of ``dataset_ids``, oldest first (from the
    ``LicensePurchased`` events since the deployment)."""
    events = await chain.purchases(chain.deployment.deployed_block, await chain.block_number())
    out = []
    for event in events:
        if buyer is not None and str(event["buyer"]).lower() != buyer.lower():
            continue
        if dataset_ids is not None and int(event["datasetId"]) not in dataset_ids:
            continue
        out.append(await chain.get_license(int(event["licenseId"])))
    return out


async def license_state(chain: Chain, lic: License) -> str:
    """'valid', 'waiting for key', 'refundable', 'expired', 'consent revoked', 'refunded', 'rejected'."""
    if lic.status == LicenseStatus.PENDING:
        now = await chain.timestamp()
        if now > lic.delivery_deadline or await chain.consent_revoked_at(lic.dataset_id):
            return "refundable"
        return "waiting for key"
    if lic.status == LicenseStatus.DELIVERED:
        if await chain.is_license_valid(lic.license_id):
            return "valid"
        if lic.expires_at and await chain.timestamp() >= lic.expires_at:
            return "expired"
        return "consent revoked"
    return lic.status.name.lower()


async def license_json(chain: Chain, lic: License) -> dict[str, Any]:
    return {
        "license_id": lic.license_id,
        "dataset_id": lic.dataset_id,
        "buyer": lic.buyer,
        "purpose": lic.purpose.name.lower(),
        "state": await license_state(chain, lic),
        "status": lic.status.name.lower(),
        "paid_to_owner": lic.paid,
        "price": str(lic.price),
        "revocable": lic.revocable,
        "purchased_at": lic.purchased_at,
        "purchased": local_time(lic.purchased_at),
        "delivery_deadline": lic.delivery_deadline,
        "key_delivered": lic.delivered_at != 0,
        "expires_at": lic.expires_at,
        "expires": local_time(lic.expires_at) if lic.expires_at else "never",
    }
