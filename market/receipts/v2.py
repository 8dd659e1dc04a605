"""Consent receipts, version 2: the record a lab signs of what it licensed and read.

A v2 receipt is canonical JSON (:func:`~market.receipts.common.canonical`) with a domain-tagged
hash, ``receipt_hash = SHA-256(HASH_TAG || canonical(body))`` (the body is everything but
``receipt_hash`` and ``signature``), and the licensee's EIP-191 signature over those 32 bytes, so a
lab cannot later disown what it filed. Everything in it but ``read`` is re-derived from the chain by
:func:`expected_body`:

- ``license``: id, buyer, purpose, status, revocable, price paid (amount and token), terms version,
  purchase / delivery / expiry times;
- ``dataset``: id, owner, manifest hash, commitment root, key commitment, plaintext size;
- ``contributions`` (only when non-empty): the datasets a pool license covers, each like
  ``dataset`` (see :func:`contributions_of`; a plain dataset license has none);
- ``terms``: the version bought under, in the CAWG training-and-data-mining vocabulary
  (``cawg.ai_training``... ``allowed`` / ``notAllowed`` / ``constrained``) plus the other on-chain
  terms and the full text's URI and SHA-256;
- ``transactions``: purchase and key delivery (tx hash, block, block hash, time);
- ``consent``: ``at_purchase`` (block, time, revoked_at, whether the terms permitted the purpose)
  and ``at_writing`` (block, time, revoked_at, whether the license was valid).

``read`` is the licensee's own signed statement (its form is checked): ``plaintext_sha256`` of the
whole plaintext and/or ``files``, a list of ``{"path", "size", "sha256"}`` sorted by path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from contracts.chain import Chain
from contracts.models import License, LicenseStatus
from contracts.terms import CAWG_KEYS, LicenseTerms

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

VERSION = 2
HASH_TAG = b"datasov/consent-receipt/v2\x00"
MAX_FILES = 100_000
_SEALS = ("receipt_hash", "signature")


@dataclass(frozen=True, slots=True)
class FileRead:
    """One file the lab read: its path in the dataset, its size and the SHA-256 of its plaintext."""

    path: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


def read_section(*, plaintext_sha256: str | None = None, files: Iterable[FileRead] | None = None) -> dict[str, Any]:
    """The ``read`` statement (raises :class:`ReceiptError` for a malformed entry)."""
    out: dict[str, Any] = {}
    if plaintext_sha256 is not None:
        out["plaintext_sha256"] = plaintext_sha256
    if files is not None:
        out["files"] = [f.to_json() for f in sorted(files, key=lambda f: f.path)]
    problems = read_problems(out)
    if problems:
        raise ReceiptError("; ".join(problems))
    return out


def read_problems(read: Any) -> list[str]:
    """What is wrong with the form of a ``read`` statement (nothing for a well-formed one)."""
    if not isinstance(read, dict) or not read or not set(read) <= {"plaintext_sha256", "files"}:
        return ["read must hold plaintext_sha256 and/or files, nothing else"]
    out: list[str] = []
    if "plaintext_sha256" in read and not is_sha256(read["plaintext_sha256"]):
        out.append("read.plaintext_sha256 is not 64 lowercase hex digits")
    files = read.get("files", [])
    if not isinstance(files, list) or len(files) > MAX_FILES:
        return [*out, f"read.files must be a list of at most {MAX_FILES} entries"]
    paths: list[str] = []
    for i, f in enumerate(files):
        where = f"read.files.{i}"
        if not isinstance(f, dict) or set(f) != {"path", "size", "sha256"}:
            out.append(f"{where} must hold exactly path, size and sha256")
            continue
        if not isinstance(f["path"], str) or not f["path"] or len(f["path"]) > 4096:
            out.append(f"{where}.path must be a non-empty string")
        else:
            paths.append(f["path"])
        if not isinstance(f["size"], int) or isinstance(f["size"], bool) or f["size"] < 0:
            out.append(f"{where}.size must be a non-negative integer")
        if not is_sha256(f["sha256"]):
            out.append(f"{where}.sha256 is not 64 lowercase hex digits")
    if paths != sorted(set(paths)) and len(paths) == len(files):
        out.append("read.files must be sorted by path, each path once")
    return out


def receipt_hash(body: dict[str, Any]) -> str:
    """The domain-tagged hash of a receipt body (``receipt_hash`` and ``signature`` left out)."""
    return hashlib.sha256(HASH_TAG + canonical({k: v for k, v in body.items() if k not in _SEALS})).hexdigest()


def seal(body: dict[str, Any], signer: LocalAccount) -> dict[str, Any]:
    """``body`` with its ``receipt_hash`` and ``signer``'s signature over it."""
    digest = receipt_hash(body)
    signed = signer.sign_message(encode_defunct(primitive=bytes.fromhex(digest)))
    clean = {k: v for k, v in body.items() if k not in _SEALS}
    return {**clean, "receipt_hash": digest, "signature": "0x" + bytes(signed.signature).hex()}


def _dataset_json(dataset_id: int, owner: str, dataset: Any) -> dict[str, Any]:
    return {
        "id": dataset_id,
        "owner": owner,
        "manifest_hash": dataset.manifest_hash.hex(),
        "commitment_root": dataset.commitment_root.hex(),
        "key_commitment": dataset.key_commitment.hex(),
        "plaintext_size": dataset.plaintext_size,
    }


async def contributions_of(chain: Chain, lic: License, *, at_block: int) -> list[dict[str, Any]]:
    """The datasets a license covers besides its own ``dataset`` (the seam for pool licenses, whose
    receipt lists every contribution, each in the form of ``dataset``). A plain dataset license
    covers none."""
    del chain, lic, at_block
    return []


def terms_json(terms: LicenseTerms) -> dict[str, Any]:
    """The terms in the CAWG vocabulary, with the rest of the on-chain terms."""
    cawg = terms.to_cawg()["data"]["entries"]
    return {
        "cawg": {key: cawg[key]["use"] for key in CAWG_KEYS.values()},
        "commercial_use": terms.commercial_use,
        "derivatives_allowed": terms.derivatives_allowed,
        "attribution_required": terms.attribution_required,
        "revocable": terms.revocable,
        "license_duration": terms.license_duration,
        "uri": terms.terms_uri,
        "text_sha256": terms.terms_hash.hex(),
    }


async def expected_body(chain: Chain, license_id: int, *, at_block: int) -> dict[str, Any]:
    """The v2 receipt body (no ``read``, unsealed) the chain supports for ``license_id`` as of
    ``at_block``. Raises :class:`NotFound` for an unknown license and
    :class:`~market.offers.TermsUnavailable` if its terms cannot be re-derived."""
    lic = await chain.get_license(license_id)
    dataset = await chain.get_dataset(lic.dataset_id)
    terms = await offers.terms_of_version(chain, lic.dataset_id, lic.terms_version)
    events = {k: v for k, v in (await chain.license_events(license_id)).items() if v["block"] <= at_block}
    head = await chain.w3.eth.get_block(at_block)
    status = status_at(lic, events, at_block)
    delivered = status == LicenseStatus.DELIVERED
    revoked = await revoked_by_block(chain, lic.dataset_id, at_block)
    time = int(head["timestamp"])
    valid = delivered and (lic.expires_at == 0 or time < lic.expires_at) and not (lic.revocable and revoked != 0)
    purchase = events.get("LicensePurchased")
    bought_block = purchase["block"] if purchase else at_block
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
            "price": {"amount": str(lic.price), "token": lic.payment_token},
            "purchased_at": lic.purchased_at,
            "delivered_at": lic.delivered_at if delivered else 0,
            "expires_at": lic.expires_at if delivered else 0,
        },
        "dataset": _dataset_json(
            lic.dataset_id, await owner_at(chain, lic.dataset_id, at_block, dataset.owner), dataset
        ),
        **({"contributions": c} if (c := await contributions_of(chain, lic, at_block=at_block)) else {}),
        "terms": terms_json(terms),
        "transactions": {"purchase": purchase, "key_delivery": events.get("KeyDelivered")},
        "consent": {
            "at_purchase": {
                "block": bought_block,
                "time": lic.purchased_at,
                "revoked_at": await revoked_by_block(chain, lic.dataset_id, bought_block),
                "purpose_permitted": terms.allows(lic.purpose),
            },
            "at_writing": {"block": at_block, "time": time, "revoked_at": revoked, "license_valid": valid},
        },
    }


async def build_receipt(
    chain: Chain,
    license_id: int,
    signer: LocalAccount,
    *,
    plaintext_sha256: str | None = None,
    files: Iterable[FileRead] | None = None,
) -> dict[str, Any]:
    """The signed v2 receipt of a license (``signer`` must be its buyer), stating what was read if
    the caller says so: ``plaintext_sha256`` of the whole plaintext and/or the ``files`` read."""
    lic = await chain.get_license(license_id)
    if lic.buyer.lower() != signer.address.lower():
        raise ReceiptError(f"license {license_id} belongs to {lic.buyer}, not {signer.address}")
    read = read_section(plaintext_sha256=plaintext_sha256, files=files) if plaintext_sha256 or files else None
    try:
        body = await expected_body(chain, license_id, at_block=await chain.block_number())
    except offers.TermsUnavailable as err:
        raise ReceiptError(f"cannot state the terms of license {license_id}: {err}") from err
    if read is not None:
        body["read"] = read
    return seal(body, signer)


def check_seal(receipt: dict[str, Any]) -> tuple[str, list[str]]:
    """The address that signed ``receipt`` and the problems with its hash. Raises
    :class:`ReceiptError` if it is not a v2 receipt or its signature does not parse."""
    found = (receipt.get("format"), receipt.get("version"))
    if found != (FORMAT, VERSION) or "receipt_hash" not in receipt:
        raise ReceiptError(
            f"not a version-{VERSION} {FORMAT} document with a receipt_hash (format, version: {found!r})"
        )
    problems: list[str] = []
    digest = receipt_hash(receipt)
    if receipt.get("receipt_hash") != digest:
        problems.append(f"receipt_hash is {receipt.get('receipt_hash')!r} in the receipt, {digest!r} for its body")
    try:
        signature = bytes.fromhex(str(receipt["signature"]).removeprefix("0x"))
        signer = Account.recover_message(encode_defunct(primitive=bytes.fromhex(digest)), signature=signature)
    except (KeyError, TypeError, ValueError) as err:
        raise ReceiptError(f"malformed receipt: {err}") from err
    except Exception as err:  # eth_keys raises several types for malformed signatures
        raise ReceiptError(f"receipt signature is malformed: {err}") from err
    return str(signer), problems


def _block_of(receipt: dict[str, Any]) -> Any:
    consent = receipt.get("consent")
    at = consent.get("at_writing") if isinstance(consent, dict) else None
    return at.get("block") if isinstance(at, dict) else None


async def verify_receipt(chain: Chain, receipt: dict[str, Any]) -> Verification:
    """Check a v2 receipt against the chain alone: its hash, the licensee's signature, and every
    field but ``read`` re-derived as of ``consent.at_writing.block``; each difference is named by
    its dotted path. ``consent_stands`` is whether the license is valid *now*."""
    signer, problems = check_seal(receipt)
    notes: list[str] = []
    license_id = receipt.get("license", {}).get("id") if isinstance(receipt.get("license"), dict) else None
    if not isinstance(license_id, int) or isinstance(license_id, bool):
        raise ReceiptError("malformed receipt: license.id must be an integer")
    lic, licensee_problems = await check_licensee(chain, license_id, signer)
    if lic is None:
        return Verification(False, False, licensee_problems)
    problems.extend(licensee_problems)
    at_block, bad_block = await check_block(chain, _block_of(receipt), "consent.at_writing.block")
    problems.extend(bad_block)
    try:
        expected = await expected_body(chain, license_id, at_block=at_block)
    except offers.TermsUnavailable as err:
        return Verification(False, False, [*problems, f"terms: {err}"], notes)
    body = {k: v for k, v in receipt.items() if k not in _SEALS}
    if "read" in body:
        problems.extend(read_problems(body.pop("read")))
        notes.append("read is the licensee's own signed statement")
    problems.extend(await check_purchase(chain, body, license_id))
    for problem in differences(body, expected):
        if problem.startswith("consent.at_writing."):
            problem += f" for block {at_block} (consent.at_writing.block)"
        problems.append(problem)
    notes.extend(await since_notes(chain, lic))
    return Verification(not problems, await chain.is_license_valid(license_id), problems, notes)
