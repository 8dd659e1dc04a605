"""Consent receipts: what a lab licensed, for which exact bytes, when, and whether consent stands.

The front door of :mod:`market.receipts`: :func:`build_receipt` writes a version-2 receipt
(:mod:`market.receipts.v2`), :func:`verify_receipt` checks a receipt of either version against the
chain alone (version 1 receipts, :mod:`market.receipts.v1`, still verify).
"""

from __future__ import annotations

from typing import Any

from contracts.chain import Chain

from .receipts import v1, v2
from .receipts.common import FORMAT, ReceiptError, Verification, canonical, differences
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
    "receipt_hash",
    "seal",
    "verify_receipt",
]

build_receipt_v1 = v1.build_receipt


async def verify_receipt(chain: Chain, receipt: Any) -> Verification:
    """Check a consent receipt (version 1 or 2) against the chain alone; see
    :func:`market.receipts.v2.verify_receipt` and :func:`market.receipts.v1.verify_receipt`.
    Raises :class:`ReceiptError` for a document that is not a receipt of ours."""
    version = receipt.get("version") if isinstance(receipt, dict) else None
    if isinstance(receipt, dict) and receipt.get("format") == FORMAT and version == v2.VERSION:
        return await v2.verify_receipt(chain, receipt)
    return await v1.verify_receipt(chain, receipt)
