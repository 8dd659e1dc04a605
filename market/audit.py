"""Consent receipts: what a lab licensed, for which exact bytes, when, and whether consent stands.

A receipt is a JSON document built from the chain alone (license, dataset, terms, the purchase
and key-delivery transactions with their blocks and times) plus, optionally, the SHA-256 of the
plaintext the lab fetched, and signed by the licensee's account (EIP-191 over the canonical JSON
without the signature). :func:`verify_receipt` needs nothing but the receipt and a chain: it checks
the signature is the licensee's, re-derives every field the receipt states from the chain as of the
receipt's block (the terms of the version the license was bought under, their CAWG and TDMRep forms,
the consent state) and names each field that differs; it also reports whether consent still stands
*now* (a receipt stays a true record of the past after a revocation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from contracts.chain import Chain
from contracts.errors import NotFound
from contracts.models import License, LicenseStatus

from . import offers
from .errors import MarketError

FORMAT = "datasov-consent-receipt"
VERSION = 1


class ReceiptError(MarketError):
    """A receipt is malformed (not one of ours, wrong version, missing fields)."""


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _status_at(lic: License, events: dict[str, dict[str, Any]], block: int) -> LicenseStatus:
    """The license's status as of ``block`` (from its events: delivery and refund are final)."""
    for name, status in (("KeyDelivered", LicenseStatus.DELIVERED), ("Refunded", LicenseStatus.REFUNDED)):
        if name in events and events[name]["block"] <= block:
            return status
    return LicenseStatus.PENDING if lic.status != LicenseStatus.NONE else LicenseStatus.NONE


async def _revoked_at(chain: Chain, dataset_id: int, block: int) -> int:
    """When consent for the dataset was revoked, if by ``block``; else 0 (revocation is final)."""
    logs = await chain.licenses.events.ConsentRevoked().get_logs(
        from_block=chain.deployment.deployed_block, to_block=block, argument_filters={"datasetId": dataset_id}
    )
    return int(logs[0]["args"]["revokedAt"]) if logs else 0


async def _owner_at(chain: Chain, dataset_id: int, block: int, current: str) -> str:
    logs = await chain.registry.events.DatasetOwnerChanged().get_logs(
        from_block=chain.deployment.deployed_block, argument_filters={"datasetId": dataset_id}
    )
    if not logs:
        return current
    before = [log for log in logs if int(log["blockNumber"]) <= block]
    return str(before[-1]["args"]["newOwner"] if before else logs[0]["args"]["previousOwner"])


async def expected_body(chain: Chain, license_id: int, *, at_block: int) -> dict[str, Any]:
    """The receipt body (without ``fetched`` and the signature) that the chain supports for
    ``license_id`` as of block ``at_block``: every field re-derived from chain state, events and
    calldata. :func:`build_receipt` signs it; :func:`verify_receipt` compares a receipt to it.

    The terms are those of the version the license was bought under (see :mod:`market.offers`),
    not the dataset's current ones. Raises :class:`NotFound` for an unknown license and
    :class:`~market.offers.TermsUnavailable` if those terms cannot be re-derived.
    """
    lic = await chain.get_license(license_id)
    dataset = await chain.get_dataset(lic.dataset_id)
    terms = await offers.terms_of_version(chain, lic.dataset_id, lic.terms_version)
    events = {k: v for k, v in (await chain.license_events(license_id)).items() if v["block"] <= at_block}
    head = await chain.w3.eth.get_block(at_block)
    status = _status_at(lic, events, at_block)
    delivered = status == LicenseStatus.DELIVERED
    revoked_at = await _revoked_at(chain, lic.dataset_id, at_block)
    time = int(head["timestamp"])
    valid = delivered and (lic.expires_at == 0 or time < lic.expires_at) and not (lic.revocable and revoked_at != 0)
    return {
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
            "status": status.name.lower(),
            "revocable": lic.revocable,
            "terms_version": lic.terms_version,
            "terms_hash": lic.terms_hash.hex(),
            "purchased_at": lic.purchased_at,
            "delivered_at": lic.delivered_at if delivered else 0,
            "expires_at": lic.expires_at if delivered else 0,
            "price": str(lic.price),
            "payment_token": lic.payment_token,
        },
        "dataset": {
            "id": lic.dataset_id,
            "owner": await _owner_at(chain, lic.dataset_id, at_block, dataset.owner),
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
            "revoked_at": revoked_at,
            "license_valid": valid,
            "checked_at_block": at_block,
            "checked_at_time": time,
        },
    }


async def build_receipt(
    chain: Chain, license_id: int, signer: LocalAccount, *, content_sha256: str | None = None
) -> dict[str, Any]:
    """The signed consent receipt of a license (``signer`` must be its buyer)."""
    lic = await chain.get_license(license_id)
    if lic.buyer.lower() != signer.address.lower():
        raise ReceiptError(f"license {license_id} belongs to {lic.buyer}, not {signer.address}")
    if content_sha256 is not None and not _is_sha256(content_sha256):
        raise ReceiptError("content_sha256 must be 64 lowercase hex digits")
    try:
        body = await expected_body(chain, license_id, at_block=await chain.block_number())
    except offers.TermsUnavailable as err:
        raise ReceiptError(f"cannot state the terms of license {license_id}: {err}") from err
    if content_sha256 is not None:
        body["fetched"] = {"plaintext_sha256": content_sha256}
    signed = signer.sign_message(encode_defunct(canonical(body)))
    return {**body, "signature": "0x" + bytes(signed.signature).hex()}


def _is_sha256(value: object) -> bool:
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


async def _license_bought_by(chain: Chain, transactions: Any) -> int | None:
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
    if type(claimed) is not type(expected) or claimed != expected:
        return [f"{path} is {claimed!r} in the receipt, {expected!r} on-chain"]
    return []


async def verify_receipt(chain: Chain, receipt: dict[str, Any]) -> Verification:
    """Check a receipt against the chain alone. ``ok`` means every field in it is what the chain
    states (as of the receipt's ``consent.checked_at_block``) and the licensee signed it.

    Each field is re-derived (see :func:`expected_body`) and compared; a field that differs is
    named in ``problems``. ``fetched.plaintext_sha256`` is the licensee's own signed statement:
    only its form is checked. ``consent_stands`` is whether the license is valid *now*.
    """
    if not isinstance(receipt, dict) or receipt.get("format") != FORMAT or receipt.get("version") != VERSION:
        found = (receipt.get("format"), receipt.get("version")) if isinstance(receipt, dict) else None
        raise ReceiptError(f"not a version-{VERSION} {FORMAT} document (format, version: {found!r})")
    problems: list[str] = []
    notes: list[str] = []
    try:
        body = {k: v for k, v in receipt.items() if k != "signature"}
        license_id = receipt["license"]["id"]
        if not isinstance(license_id, int) or isinstance(license_id, bool):
            raise TypeError("license.id must be an integer")
        signer = Account.recover_message(
            encode_defunct(canonical(body)), signature=bytes.fromhex(str(receipt["signature"]).removeprefix("0x"))
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ReceiptError(f"malformed receipt: {err}") from err
    except Exception as err:  # eth_keys raises several types for malformed signatures
        raise ReceiptError(f"receipt signature is malformed: {err}") from err

    try:
        lic = await chain.get_license(license_id)
    except NotFound:
        return Verification(False, False, [f"license.id {license_id}: no such license on this chain"])
    if signer.lower() != lic.buyer.lower():
        problems.append(f"signed by {signer}, but the licensee is {lic.buyer}")
    if lic.status != LicenseStatus.DELIVERED:
        problems.append(f"license {license_id} is {lic.status.name.lower()} on-chain: no key was ever delivered")

    consent = receipt.get("consent")
    at_block = consent.get("checked_at_block") if isinstance(consent, dict) else None
    latest = await chain.block_number()
    if not isinstance(at_block, int) or isinstance(at_block, bool) or not 0 <= at_block <= latest:
        problems.append(f"consent.checked_at_block {at_block!r} is not a block of this chain (latest {latest})")
        at_block = latest
    try:
        expected = await expected_body(chain, license_id, at_block=at_block)
    except offers.TermsUnavailable as err:
        return Verification(False, False, [*problems, f"terms: {err}"], notes)
    fetched = body.pop("fetched", None)
    if fetched is not None:
        if not isinstance(fetched, dict) or set(fetched) != {"plaintext_sha256"}:
            problems.append("fetched must hold exactly plaintext_sha256")
        elif not _is_sha256(fetched["plaintext_sha256"]):
            problems.append("fetched.plaintext_sha256 is not 64 lowercase hex digits")
        else:
            notes.append("fetched.plaintext_sha256 is the licensee's own signed statement")
    bought = await _license_bought_by(chain, body.get("transactions"))
    if bought is not None and bought != license_id:
        problems.append(f"license.id is {license_id} in the receipt, but its purchase transaction bought {bought}")
    for problem in differences(body, expected):
        if problem.startswith("consent.checked_at_time"):
            problem += f" for block {at_block} (consent.checked_at_block)"
        problems.append(problem)

    dataset = await chain.get_dataset(lic.dataset_id)
    if dataset.terms_version != lic.terms_version:
        notes.append(
            f"the owner has since updated the terms (now version {dataset.terms_version}); "
            f"checked against version {lic.terms_version}, the one this license was bought under"
        )
    revoked_at = await chain.consent_revoked_at(lic.dataset_id)
    if revoked_at:
        notes.append(f"consent was revoked at {revoked_at}" + (" (license was revocable)" if lic.revocable else ""))
    return Verification(not problems, await chain.is_license_valid(license_id), problems, notes)
