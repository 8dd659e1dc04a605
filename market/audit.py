"""Consent receipts: what a lab licensed, for which exact bytes, when, and whether consent stands.

A receipt is a JSON document built from the chain alone (license, dataset, terms, the purchase
and key-delivery transactions with their blocks and times) plus, optionally, the SHA-256 of the
plaintext the lab fetched, and signed by the licensee's account (EIP-191 over the canonical JSON
without the signature). :func:`verify_receipt` needs nothing but the receipt and a chain: it checks
the signature is the licensee's and every on-chain claim against the chain, and reports whether
consent still stands *now* (a receipt stays a true record of the past after a revocation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from .chain import Chain
from .errors import MarketError, NotFound
from .models import LicenseStatus

FORMAT = "datasov-consent-receipt"
VERSION = 1


class ReceiptError(MarketError):
    """A receipt is malformed (not one of ours, wrong version, missing fields)."""


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


async def build_receipt(
    chain: Chain, license_id: int, signer: LocalAccount, *, content_sha256: str | None = None
) -> dict[str, Any]:
    """The signed consent receipt of a license (``signer`` must be its buyer)."""
    lic = await chain.get_license(license_id)
    if lic.buyer.lower() != signer.address.lower():
        raise ReceiptError(f"license {license_id} belongs to {lic.buyer}, not {signer.address}")
    dataset = await chain.get_dataset(lic.dataset_id)
    terms = await chain.get_terms(lic.dataset_id)
    events = await chain.license_events(license_id)
    head = await chain.w3.eth.get_block("latest")
    body: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "chain": {
            "chain_id": chain.deployment.chain_id,
            "license_manager": chain.deployment.license_manager,
            "registry": chain.deployment.registry,
        },
        "license": {
            "id": license_id,
            "buyer": lic.buyer,
            "purpose": lic.purpose.name.lower(),
            "status": lic.status.name.lower(),
            "revocable": lic.revocable,
            "terms_version": lic.terms_version,
            "terms_hash": lic.terms_hash.hex(),
            "purchased_at": lic.purchased_at,
            "delivered_at": lic.delivered_at,
            "expires_at": lic.expires_at,
            "price": str(lic.price),
            "payment_token": lic.payment_token,
        },
        "dataset": {
            "id": lic.dataset_id,
            "owner": dataset.owner,
            "manifest_hash": dataset.manifest_hash.hex(),
            "commitment_root": dataset.commitment_root.hex(),
            "key_commitment": dataset.key_commitment.hex(),
            "plaintext_size": dataset.plaintext_size,
        },
        "terms": {**terms.to_json(), "cawg": terms.to_cawg(), "tdmrep": terms.to_tdmrep()},
        "transactions": {
            "purchase": events.get("LicensePurchased"),
            "key_delivery": events.get("KeyDelivered"),
        },
        "consent": {
            "revoked_at": await chain.consent_revoked_at(lic.dataset_id),
            "license_valid": await chain.is_license_valid(license_id),
            "checked_at_block": int(head["number"]),
            "checked_at_time": int(head["timestamp"]),
        },
    }
    if content_sha256 is not None:
        body["fetched"] = {"plaintext_sha256": content_sha256}
    signed = signer.sign_message(encode_defunct(canonical(body)))
    return {**body, "signature": "0x" + bytes(signed.signature).hex()}


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


async def verify_receipt(chain: Chain, receipt: dict[str, Any]) -> Verification:
    """Check a receipt against the chain alone. ``ok`` means every claim in it is true on-chain."""
    if receipt.get("format") != FORMAT or receipt.get("version") != VERSION:
        raise ReceiptError(f"not a version-{VERSION} {FORMAT} document")
    problems: list[str] = []
    notes: list[str] = []
    try:
        body = {k: v for k, v in receipt.items() if k != "signature"}
        claimed_license, claimed_dataset = receipt["license"], receipt["dataset"]
        license_id = int(claimed_license["id"])
        signer = Account.recover_message(
            encode_defunct(canonical(body)), signature=bytes.fromhex(str(receipt["signature"]).removeprefix("0x"))
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ReceiptError(f"malformed receipt: {err}") from err
    except Exception as err:  # eth_keys raises several types for malformed signatures
        raise ReceiptError(f"receipt signature is malformed: {err}") from err

    if receipt["chain"]["chain_id"] != chain.deployment.chain_id:
        problems.append(f"receipt is for chain {receipt['chain']['chain_id']}, not {chain.deployment.chain_id}")
    if receipt["chain"]["license_manager"].lower() != chain.deployment.license_manager.lower():
        problems.append("receipt names another LicenseManager contract")
    try:
        lic = await chain.get_license(license_id)
    except NotFound:
        return Verification(False, False, [*problems, f"license {license_id} does not exist on this chain"])
    if signer.lower() != lic.buyer.lower():
        problems.append(f"signed by {signer}, but the licensee is {lic.buyer}")
    expected_license = {
        "buyer": lic.buyer,
        "purpose": lic.purpose.name.lower(),
        "revocable": lic.revocable,
        "terms_version": lic.terms_version,
        "terms_hash": lic.terms_hash.hex(),
        "purchased_at": lic.purchased_at,
        "delivered_at": lic.delivered_at,
        "expires_at": lic.expires_at,
        "price": str(lic.price),
        "payment_token": lic.payment_token,
    }
    for key, value in expected_license.items():
        if claimed_license.get(key) != value:
            problems.append(f"license.{key} is {claimed_license.get(key)!r} in the receipt, {value!r} on-chain")
    if lic.status != LicenseStatus.DELIVERED:
        problems.append(f"license {license_id} is {lic.status.name.lower()} on-chain: no key was ever delivered")

    dataset = await chain.get_dataset(lic.dataset_id)
    expected_dataset = {
        "id": lic.dataset_id,
        "owner": dataset.owner,
        "manifest_hash": dataset.manifest_hash.hex(),
        "commitment_root": dataset.commitment_root.hex(),
        "key_commitment": dataset.key_commitment.hex(),
        "plaintext_size": dataset.plaintext_size,
    }
    for key, value in expected_dataset.items():
        if claimed_dataset.get(key) != value:
            problems.append(f"dataset.{key} is {claimed_dataset.get(key)!r} in the receipt, {value!r} on-chain")

    if dataset.terms_version == lic.terms_version:
        terms = await chain.get_terms(lic.dataset_id)
        claimed_terms = {k: v for k, v in receipt["terms"].items() if k not in ("cawg", "tdmrep")}
        if claimed_terms != terms.to_json():
            problems.append("the terms in the receipt differ from the terms on-chain")
    else:
        notes.append(f"the owner has since updated the terms (version {dataset.terms_version}); checked the hash")

    events = await chain.license_events(license_id)
    for name, key in (("LicensePurchased", "purchase"), ("KeyDelivered", "key_delivery")):
        if receipt["transactions"].get(key) != events.get(name):
            problems.append(f"the {key} transaction in the receipt is not the one on-chain")

    revoked_at = await chain.consent_revoked_at(lic.dataset_id)
    valid_now = await chain.is_license_valid(license_id)
    if revoked_at:
        notes.append(f"consent was revoked at {revoked_at}" + (" (license was revocable)" if lic.revocable else ""))
    return Verification(not problems, valid_now, problems, notes)
