"""Consent receipts: what a lab licensed, for which exact bytes, when, and whether consent stands.

The front door of :mod:`market.receipts`: :func:`build_receipt` writes a version-2 receipt
(:mod:`market.receipts.v2`), :func:`verify_receipt` checks a receipt of either version against the
chain alone (version 1 receipts, :mod:`market.receipts.v1`, still verify), :func:`export` turns v2
receipts into one document for a training mix (SPDX 3.0.1, Croissant 1.1, the EU AI Act summary's
licensed-data section) and :func:`verify_document` checks an exported SPDX or Croissant document
against the chain.
"""

from __future__ import annotations

from typing import Any

from contracts.chain import Chain

from .receipts import croissant, euaiact, spdx, v1, v2
from .receipts.common import FORMAT, ReceiptError, Verification, canonical, differences
from .receipts.documents import kind_of, verify_document
from .receipts.facts import entries
from .receipts.v2 import FileRead, build_receipt, receipt_hash, seal

__all__ = [
    "FORMAT",
    "FileRead",
    "ReceiptError",
    "Verification",
    "build_receipt",
    "build_receipt_v1",
    "canonical",
    "differences",
    "export",
    "kind_of",
    "receipt_hash",
    "seal",
    "verify_document",
    "verify_receipt",
]

FORMATS = ("spdx3", "croissant", "eu-ai-act")

build_receipt_v1 = v1.build_receipt


async def verify_receipt(chain: Chain, receipt: Any) -> Verification:
    """Check a consent receipt (version 1 or 2) against the chain alone; see
    :func:`market.receipts.v2.verify_receipt` and :func:`market.receipts.v1.verify_receipt`.
    Raises :class:`ReceiptError` for a document that is not a receipt of ours."""
    version = receipt.get("version") if isinstance(receipt, dict) else None
    if isinstance(receipt, dict) and receipt.get("format") == FORMAT and version == v2.VERSION:
        return await v2.verify_receipt(chain, receipt)
    return await v1.verify_receipt(chain, receipt)


def export(receipts: list[dict[str, Any]], fmt: str, *, model: str | None = None, created: int) -> dict[str, Any]:
    """One document for a training mix of v2 receipts (``fmt`` one of :data:`FORMATS`; ``created``
    the unix time of writing). The receipts should have been verified first (:func:`verify_receipt`);
    this only reads them. Raises :class:`ReceiptError` for an unknown format or a receipt that is
    not version 2."""
    mix = entries(receipts)
    if fmt == "spdx3":
        return spdx.export(mix, model=model, created=created)
    if fmt == "croissant":
        return croissant.export(mix, model=model, created=created)
    if fmt == "eu-ai-act":
        return euaiact.summary(mix, model=model, created=created)
    raise ReceiptError(f"unknown export format {fmt!r}; one of: {', '.join(FORMATS)}")


def summary_markdown(summary: dict[str, Any]) -> str:
    """The EU AI Act licensed-data section (from :func:`export` with ``eu-ai-act``) as Markdown."""
    return euaiact.markdown(summary)
