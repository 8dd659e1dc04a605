"""Consent receipts, version 1 (still verified; new receipts are version 2).

What a lab licensed, for which exact bytes, when, and whether consent stands.

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

from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from contracts.chain import Chain
from contracts.models import LicenseStatus

from .. import offers
from .common import (
    FORMAT,
    ReceiptError,
    Verification,
    canonical,
    chain_json,
    check_block,
    check_licensee,
    check_purchase,
    differences,
    is_sha256,
    owner_at,
    revoked_by_block,
    since_notes,
    status_at,
)

VERSION = 1


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
    status = status_at(lic, events, at_block)
    delivered = status == LicenseStatus.DELIVERED
    revoked_at = await revoked_by_block(chain, lic.dataset_id, at_block)
    time = int(head["timestamp"])
    valid = delivered and (lic.expires_at == 0 or time < lic.expires_at) and not (lic.revocable and revoked_at != 0)
    return {
        "format": FORMAT,
        "version": VERSION,
        "chain": chain_json(chain),
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
            "owner": await owner_at(chain, lic.dataset_id, at_block, dataset.owner),
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
    if content_sha256 is not None and not is_sha256(content_sha256):
        raise ReceiptError("content_sha256 must be 64 lowercase hex digits")
    try:
        body = await expected_body(chain, license_id, at_block=await chain.block_number())
    except offers.TermsUnavailable as err:
        raise ReceiptError(f"cannot state the terms of license {license_id}: {err}") from err
    if content_sha256 is not None:
        body["fetched"] = {"plaintext_sha256": content_sha256}
    signed = signer.sign_message(encode_defunct(canonical(body)))
    return {**body, "signature": "0x" + bytes(signed.signature).hex()}


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

    lic, licensee_problems = await check_licensee(chain, license_id, str(signer))
    if lic is None:
        return Verification(False, False, licensee_problems)
    problems.extend(licensee_problems)

    consent = receipt.get("consent")
    claimed_block = consent.get("checked_at_block") if isinstance(consent, dict) else None
    at_block, bad_block = await check_block(chain, claimed_block, "consent.checked_at_block")
    problems.extend(bad_block)
    try:
        expected = await expected_body(chain, license_id, at_block=at_block)
    except offers.TermsUnavailable as err:
        return Verification(False, False, [*problems, f"terms: {err}"], notes)
    fetched = body.pop("fetched", None)
    if fetched is not None:
        if not isinstance(fetched, dict) or set(fetched) != {"plaintext_sha256"}:
            problems.append("fetched must hold exactly plaintext_sha256")
        elif not is_sha256(fetched["plaintext_sha256"]):
            problems.append("fetched.plaintext_sha256 is not 64 lowercase hex digits")
        else:
            notes.append("fetched.plaintext_sha256 is the licensee's own signed statement")
    problems.extend(await check_purchase(chain, body, license_id))
    for problem in differences(body, expected):
        if problem.startswith("consent.checked_at_time"):
            problem += f" for block {at_block} (consent.checked_at_block)"
        problems.append(problem)
    notes.extend(await since_notes(chain, lic))
    return Verification(not problems, await chain.is_license_valid(license_id), problems, notes)
