"""Exported documents (SPDX 3.0.1, Croissant 1.1) checked against the chain alone.

Each dataset the document lists names its license (chain, license manager, license id) and the
block its receipt was written at; :func:`verify_document` re-derives that receipt's body from the
chain (:func:`market.receipts.v2.expected_body`) and compares every fact the document states
(:mod:`market.receipts.facts`: hashes, terms, buyer, owner, dates, transactions), naming the fact
and where the document states it. A fact the document leaves out is a problem too.
"""

from __future__ import annotations

from typing import Any

from contracts.chain import Chain
from contracts.errors import NotFound
from contracts.models import LicenseStatus

from .. import offers
from . import croissant, spdx, v2
from .common import ReceiptError, Verification, license_bought_by
from .facts import FACT_KEYS, Claim, datasets_of, facts

_IDENTITY = ("chain_id", "license_manager", "license_id", "dataset_id", "checked_at_block")


def kind_of(doc: Any) -> str | None:
    """``"spdx3"``, ``"croissant"`` or None for a document that is neither."""
    if spdx.is_spdx(doc):
        return "spdx3"
    if croissant.is_croissant(doc):
        return "croissant"
    return None


def document_claims(doc: Any) -> list[list[Claim]]:
    """The facts a document states, one list per dataset. Raises :class:`ReceiptError` for a
    document that is not one of ours or whose facts cannot be read."""
    kind = kind_of(doc)
    if kind is None:
        raise ReceiptError("not a consent receipt, nor an SPDX 3.0.1 or Croissant 1.1 document from datasov")
    try:
        return spdx.claims(doc) if kind == "spdx3" else croissant.claims(doc)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise ReceiptError(f"the {kind} document's datasov facts cannot be read: {err!r}") from err


def _first(group: list[Claim], key: str) -> Any:
    return next((c.value for c in group if c.key == key), None)


async def _check_group(chain: Chain, group: list[Claim], latest: int) -> tuple[list[str], bool, list[str]]:
    """(problems, license valid now, notes) for one dataset's facts."""
    missing = [k for k in FACT_KEYS if k not in {c.key for c in group}]
    problems = [f"{k} is missing from the document" for k in missing if k not in _IDENTITY]
    ident = {k: _first(group, k) for k in _IDENTITY}
    if any(ident[k] is None for k in _IDENTITY):
        return (
            [
                *problems,
                f"cannot tell which license this is: {', '.join(k for k in _IDENTITY if ident[k] is None)} missing",
            ],
            False,
            [],
        )
    license_id, at_block = ident["license_id"], ident["checked_at_block"]
    label = f"license {license_id}"
    if not isinstance(license_id, int) or isinstance(license_id, bool):
        return [*problems, f"license_id {license_id!r} is not an integer"], False, []
    if not isinstance(at_block, int) or isinstance(at_block, bool) or not 0 <= at_block <= latest:
        problems.append(f"checked_at_block {at_block!r} is not a block of this chain (latest {latest})")
        at_block = latest
    try:
        lic = await chain.get_license(license_id)
        body = await v2.expected_body(chain, license_id, at_block=at_block)
    except NotFound:
        return [*problems, f"license_id {license_id}: no such license on this chain"], False, []
    except offers.TermsUnavailable as err:
        return [*problems, f"{label}: terms: {err}"], False, []
    bought = await license_bought_by(chain, {"purchase": {"tx": _first(group, "purchase_tx")}})
    if bought is not None and bought != license_id:
        problems.append(f"license_id is {license_id} in the document, but its purchase transaction bought {bought}")
    if lic.status != LicenseStatus.DELIVERED:
        problems.append(f"{label} is {lic.status.name.lower()} on-chain: no key was ever delivered")
    dataset = next((d for d in datasets_of(body) if d["id"] == ident["dataset_id"]), None)
    if dataset is None:
        problems.append(
            f"dataset_id is {ident['dataset_id']!r} in the document, but {label} is for dataset {body['dataset']['id']}"
        )
        dataset = body["dataset"]
    expected = facts(body, dataset)
    for c in group:
        want = expected.get(c.key, _ABSENT)
        if want is _ABSENT:
            problems.append(f"{c.key} ({c.where}) is in the document but is nothing the chain states")
        elif type(c.value) is not type(want) or c.value != want:
            problems.append(f"{c.key} is {c.value!r} in {c.where} ({label}), {want!r} on-chain")
    notes = []
    revoked = await chain.consent_revoked_at(lic.dataset_id)
    if revoked:
        notes.append(f"{label}: consent for dataset {lic.dataset_id} was revoked at {revoked}")
    return problems, await chain.is_license_valid(license_id), notes


_ABSENT = object()


async def verify_document(chain: Chain, doc: Any) -> Verification:
    """Check an exported SPDX or Croissant document against the chain: ``ok`` only if every fact it
    states about every license is the chain's. ``consent_stands``: every license is valid now."""
    groups = document_claims(doc)
    if not groups:
        raise ReceiptError("the document lists no datasov datasets")
    latest = await chain.block_number()
    problems: list[str] = []
    notes: list[str] = []
    stands = True
    for group in groups:
        found, valid, said = await _check_group(chain, group, latest)
        problems.extend(found)
        notes.extend(said)
        stands = stands and valid
    for problem in problems:
        if problem.startswith("chain_id ") or problem.startswith("license_manager "):
            notes.append("the document names another chain or deployment than this one")
            break
    return Verification(not problems, stands, problems, notes)
