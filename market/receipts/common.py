"""What every receipt version shares: canonical JSON, field-by-field comparison naming each
difference, and the chain look-ups that re-derive a license's history as of a block."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from eth_typing import HexStr
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from contracts.chain import Chain
from contracts.errors import NotFound
from contracts.models import License, LicenseStatus

from ..errors import MarketError

FORMAT = "datasov-consent-receipt"


class ReceiptError(MarketError):
    """A receipt is malformed (not one of ours, wrong version, missing fields)."""


def canonical(obj: Any) -> bytes:
    """Sorted keys, no whitespace, ASCII only: the bytes a receipt's hash and signature cover."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


@dataclass
class Verification:
    ok: bool
    consent_stands: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "consent_stands": self.consent_stands,
            "problems": self.problems,
            "notes": self.notes,
        }


def differences(claimed: Any, expected: Any, path: str = "") -> list[str]:
    """One problem per field of ``claimed`` that is not ``expected`` (missing, extra, or another
    value), each naming the field by its dotted path."""
    if isinstance(expected, dict) and isinstance(claimed, dict):
        out: list[str] = []
        for key in sorted(expected.keys() | claimed.keys()):
            where = f"{path}.{key}" if path else key
            if key not in claimed:
                out.append(f"{where} is missing from the receipt")
            elif key not in expected:
                out.append(f"{where} is in the receipt but is nothing the chain states")
            else:
                out.extend(differences(claimed[key], expected[key], where))
        return out
    if isinstance(expected, list) and isinstance(claimed, list) and len(claimed) == len(expected):
        return [
            p for i, (c, e) in enumerate(zip(claimed, expected, strict=True)) for p in differences(c, e, f"{path}.{i}")
        ]
    if type(claimed) is not type(expected) or claimed != expected:
        return [f"{path} is {claimed!r} in the receipt, {expected!r} on-chain"]
    return []


def status_at(lic: License, events: dict[str, dict[str, Any]], block: int) -> LicenseStatus:
    """The license's status as of ``block`` (from its events: delivery and refund are final)."""
    for name, status in (("KeyDelivered", LicenseStatus.DELIVERED), ("Refunded", LicenseStatus.REFUNDED)):
        if name in events and events[name]["block"] <= block:
            return status
    return LicenseStatus.PENDING if lic.status != LicenseStatus.NONE else LicenseStatus.NONE


async def revoked_by_block(chain: Chain, dataset_id: int, block: int) -> int:
    """When consent for the dataset was revoked, if by ``block``; else 0 (revocation is final)."""
    logs = await chain.licenses.events.ConsentRevoked().get_logs(
        from_block=chain.deployment.deployed_block, to_block=block, argument_filters={"datasetId": dataset_id}
    )
    return int(logs[0]["args"]["revokedAt"]) if logs else 0


async def owner_at(chain: Chain, dataset_id: int, block: int, current: str) -> str:
    logs = await chain.registry.events.DatasetOwnerChanged().get_logs(
        from_block=chain.deployment.deployed_block, argument_filters={"datasetId": dataset_id}
    )
    if not logs:
        return current
    before = [log for log in logs if int(log["blockNumber"]) <= block]
    return str(before[-1]["args"]["newOwner"] if before else logs[0]["args"]["previousOwner"])


async def license_bought_by(chain: Chain, transactions: Any) -> int | None:
    """The license that the receipt's purchase transaction bought, if it names one that did."""
    purchase = transactions.get("purchase") if isinstance(transactions, dict) else None
    tx = purchase.get("tx") if isinstance(purchase, dict) else None
    if not isinstance(tx, str):
        return None
    try:
        mined = await chain.w3.eth.get_transaction_receipt(HexStr(tx))
    except (TransactionNotFound, ValueError):
        return None
    logs = chain.licenses.events.LicensePurchased().process_receipt(mined, errors=DISCARD)
    return int(logs[0]["args"]["licenseId"]) if logs else None


async def check_licensee(chain: Chain, license_id: int, signer: str) -> tuple[License | None, list[str]]:
    """The license and what is wrong with it as a receipt's subject: signed by someone other than
    its buyer, or no key ever delivered. ``(None, [problem])`` when the chain has no such license."""
    try:
        lic = await chain.get_license(license_id)
    except NotFound:
        return None, [f"license.id {license_id}: no such license on this chain"]
    problems = []
    if signer.lower() != lic.buyer.lower():
        problems.append(f"signed by {signer}, but the licensee is {lic.buyer}")
    if lic.status != LicenseStatus.DELIVERED:
        problems.append(f"license {license_id} is {lic.status.name.lower()} on-chain: no key was ever delivered")
    return lic, problems


async def check_block(chain: Chain, at_block: Any, where: str) -> tuple[int, list[str]]:
    """``at_block`` (the receipt's field ``where``) if it is a block of this chain; else the latest
    block and the problem naming the field."""
    latest = await chain.block_number()
    if not isinstance(at_block, int) or isinstance(at_block, bool) or not 0 <= at_block <= latest:
        return latest, [f"{where} {at_block!r} is not a block of this chain (latest {latest})"]
    return at_block, []


async def check_purchase(chain: Chain, body: dict[str, Any], license_id: int) -> list[str]:
    """The problem if the receipt's purchase transaction bought another license than ``license.id``."""
    bought = await license_bought_by(chain, body.get("transactions"))
    if bought is not None and bought != license_id:
        return [f"license.id is {license_id} in the receipt, but its purchase transaction bought {bought}"]
    return []


async def since_notes(chain: Chain, lic: License) -> list[str]:
    """What changed since the license was bought that does not make a receipt wrong: newer terms,
    a revocation."""
    notes = []
    dataset = await chain.get_dataset(lic.dataset_id)
    if dataset.terms_version != lic.terms_version:
        notes.append(
            f"the owner has since updated the terms (now version {dataset.terms_version}); "
            f"checked against version {lic.terms_version}, the one this license was bought under"
        )
    revoked_at = await chain.consent_revoked_at(lic.dataset_id)
    if revoked_at:
        notes.append(f"consent was revoked at {revoked_at}" + (" (license was revocable)" if lic.revocable else ""))
    return notes


def chain_json(chain: Chain) -> dict[str, Any]:
    return {
        "chain_id": chain.deployment.chain_id,
        "license_manager": chain.deployment.license_manager,
        "registry": chain.deployment.registry,
    }
