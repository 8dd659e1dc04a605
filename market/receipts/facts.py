"""The facts the chain fixes about one licensed dataset, as the export formats state them.

An exported document (SPDX, Croissant) states, for each dataset of a training mix, a flat set of
facts (:data:`FACT_KEYS`) taken from a v2 receipt: the license and its parties, the dataset's
hashes and size, the terms in CAWG vocabulary, the times and transactions of purchase and key
delivery. Each exporter writes them into its own vocabulary and reads them back
(``claims(document)``); :mod:`market.receipts.documents` re-derives each receipt body from the
chain and compares fact by fact, naming the fact and where the document states it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from contracts.terms import CAWG_KEYS

from .common import ReceiptError
from .v2 import VERSION

LICENSE_KEYS = (
    "chain_id",
    "license_manager",
    "license_id",
    "buyer",
    "purpose",
    "price",
    "payment_token",
    "terms_version",
    "purchased_at",
    "delivered_at",
    "expires_at",
    "purchase_tx",
    "purchase_block",
    "key_delivery_tx",
    "key_delivery_block",
)
DATASET_KEYS = ("dataset_id", "owner", "manifest_hash", "commitment_root", "plaintext_size")
TERMS_KEYS = (
    *CAWG_KEYS.values(),
    "commercial_use",
    "derivatives_allowed",
    "attribution_required",
    "revocable",
    "license_duration",
    "terms_uri",
    "terms_text_sha256",
)
FACT_KEYS = (*LICENSE_KEYS, *DATASET_KEYS, *TERMS_KEYS, "checked_at_block")
"""Every fact an exported document states per dataset; ``checked_at_block`` is the block the
receipt was written at (the facts are checked as of it)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """One fact as a document states it: ``where`` locates it in the document (for messages)."""

    key: str
    value: Any
    where: str


def datasets_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The datasets a receipt covers: a pool license's contributions, else its one dataset."""
    contributions = body.get("contributions")
    return list(contributions) if contributions else [body["dataset"]]


def facts(body: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The facts of ``dataset`` (one of :func:`datasets_of`) under the receipt ``body``."""
    lic, terms, txs = body["license"], body["terms"], body["transactions"]
    purchase, delivery = txs.get("purchase") or {}, txs.get("key_delivery") or {}
    return {
        "chain_id": body["chain"]["chain_id"],
        "license_manager": body["chain"]["license_manager"],
        "license_id": lic["id"],
        "buyer": lic["buyer"],
        "purpose": lic["purpose"],
        "price": lic["price"]["amount"],
        "payment_token": lic["price"]["token"],
        "terms_version": lic["terms_version"],
        "purchased_at": lic["purchased_at"],
        "delivered_at": lic["delivered_at"],
        "expires_at": lic["expires_at"],
        "purchase_tx": purchase.get("tx", ""),
        "purchase_block": purchase.get("block", 0),
        "key_delivery_tx": delivery.get("tx", ""),
        "key_delivery_block": delivery.get("block", 0),
        "dataset_id": dataset["id"],
        "owner": dataset["owner"],
        "manifest_hash": dataset["manifest_hash"],
        "commitment_root": dataset["commitment_root"],
        "plaintext_size": dataset["plaintext_size"],
        **terms["cawg"],
        **{k: terms[k] for k in ("commercial_use", "derivatives_allowed", "attribution_required", "revocable")},
        "license_duration": terms["license_duration"],
        "terms_uri": terms["uri"],
        "terms_text_sha256": terms["text_sha256"],
        "checked_at_block": body["consent"]["at_writing"]["block"],
    }


@dataclass(frozen=True, slots=True)
class Entry:
    """One dataset of a training mix: its receipt and the facts of it."""

    receipt: dict[str, Any]
    dataset: dict[str, Any]
    facts: dict[str, Any]

    @property
    def files(self) -> list[dict[str, Any]]:
        read = self.receipt.get("read") or {}
        return list(read.get("files") or [])


def entries(receipts: Iterable[dict[str, Any]]) -> list[Entry]:
    """The datasets of a training mix, one entry per (receipt, dataset), in receipt order. Raises
    :class:`ReceiptError` for a document that is not a v2 receipt."""
    out: list[Entry] = []
    for i, receipt in enumerate(receipts):
        if not isinstance(receipt, dict) or receipt.get("version") != VERSION or "receipt_hash" not in receipt:
            raise ReceiptError(f"receipt {i}: only version-{VERSION} receipts can be exported (write it again)")
        try:
            out.extend(Entry(receipt, d, facts(receipt, d)) for d in datasets_of(receipt))
        except (KeyError, TypeError) as err:
            raise ReceiptError(f"receipt {i} is malformed: {err!r} missing") from err
    return out


_MODALITIES = {
    "text": {".txt", ".md", ".json", ".jsonl", ".xml", ".html", ".htm", ".rst", ".tex", ".pdf"},
    "image": {".png", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".svg"},
    "audio": {".wav", ".mp3", ".flac", ".ogg", ".m4a", ".opus"},
    "video": {".mp4", ".mkv", ".webm", ".mov", ".avi"},
    "structured": {".csv", ".tsv", ".parquet", ".arrow", ".sqlite", ".db", ".feather"},
}


def modalities(files: Iterable[dict[str, Any]]) -> list[str]:
    """A guess at a dataset's modalities from the extensions of its files (sorted; empty when no
    file has a known extension)."""
    found: set[str] = set()
    for f in files:
        ext = PurePosixPath(str(f.get("path", ""))).suffix.lower()
        found.update(kind for kind, exts in _MODALITIES.items() if ext in exts)
    return sorted(found)
