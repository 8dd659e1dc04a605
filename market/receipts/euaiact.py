"""The licensed-data section of the EU AI Act public summary of training content (Art. 53(1)(d)).

The Commission's template lists, under "data sources", the private datasets licensed from
rightsholders (section 2.2.1 of the template), and under "data processing", how text-and-data-mining
reservations were honoured (3.1). This module writes that part for a training mix, in JSON
(:func:`summary`) and Markdown (:func:`markdown`): one row per dataset with its owner, size, a
modality guess from the names of the files read, the licence terms (CAWG), the date range of use
(key delivery to expiry, revocation of a revocable licence, or the time of writing) with consent at
use time and its end, and the opt-out handling: the purposes the terms reserved (notAllowed).
"""

from __future__ import annotations

from typing import Any

from .common import ReceiptError
from .facts import Entry, modalities
from .spdx import iso

_PURPOSES = ("cawg.ai_training", "cawg.ai_generative_training", "cawg.ai_inference", "cawg.data_mining")


def _row(entry: Entry) -> dict[str, Any]:
    f, consent = entry.facts, entry.receipt["consent"]
    at_writing = consent["at_writing"]
    revoked = int(at_writing["revoked_at"])
    ends = [(f["expires_at"], "licence expired")] if f["expires_at"] else []
    if revoked and f["revocable"]:
        ends.append((revoked, "owner revoked consent (revocable licence)"))
    end_time, end_reason = min(ends) if ends else (0, "")
    if end_time and end_time > at_writing["time"]:
        end_time, end_reason = 0, ""  # not ended yet when the receipt was written
    return {
        "dataset": f"datasov dataset {f['dataset_id']} (chain {f['chain_id']})",
        "license_id": f["license_id"],
        "owner": f["owner"],
        "size_bytes": f["plaintext_size"],
        "commitment_root": f["commitment_root"],
        "modality": modalities(entry.files) or ["unknown"],
        "files_read": len(entry.files),
        "purpose": f["purpose"],
        "terms": {p: f[p] for p in _PURPOSES}
        | {"commercial_use": f["commercial_use"], "terms_uri": f["terms_uri"], "revocable": f["revocable"]},
        "use": {
            "from": iso(f["delivered_at"]) if f["delivered_at"] else None,
            "to": iso(end_time) if end_time else None,
            "ended_because": end_reason or None,
            "as_of": iso(at_writing["time"]),
        },
        "consent": {
            "at_purchase": "valid" if not consent["at_purchase"]["revoked_at"] else "revoked",
            "purpose_permitted_at_purchase": consent["at_purchase"]["purpose_permitted"],
            "at_writing": "valid" if at_writing["license_valid"] else "ended",
            "revoked_at": iso(revoked) if revoked else None,
        },
        "opt_out": {
            "reserved_purposes": [p for p in _PURPOSES if f[p] == "notAllowed"],
            "honoured_by": f"used only for {f['purpose']}, which the terms permitted at purchase "
            f"(checked on-chain before the key was released in block {f['key_delivery_block']})",
        },
        "transactions": {"purchase": f["purchase_tx"], "key_delivery": f["key_delivery_tx"]},
    }


def summary(entries: list[Entry], *, model: str | None = None, created: int) -> dict[str, Any]:
    """The licensed-data section as JSON."""
    if not entries:
        raise ReceiptError("nothing to export: no receipts")
    rows = [_row(e) for e in entries]
    return {
        "template": "EU AI Act Art. 53(1)(d) public summary of training content: licensed data",
        "model": model,
        "written_at": iso(created),
        "section_2_2_1_licensed_datasets": rows,
        "section_3_1_opt_outs": {
            "datasets_with_reserved_purposes": sum(1 for r in rows if r["opt_out"]["reserved_purposes"]),
            "method": "each dataset's terms are on-chain; a licence is only for a purpose its terms permit, and "
            "the owner's key agent checks consent before releasing the data key",
        },
        "total_size_bytes": sum(r["size_bytes"] for r in rows),
    }


def markdown(doc: dict[str, Any]) -> str:
    """The licensed-data section as Markdown (from :func:`summary`)."""
    title = f" of {doc['model']}" if doc.get("model") else ""
    lines = [
        f"# Training content summary{title}: licensed data",
        "",
        f"Written {doc['written_at']}. Total licensed data: {doc['total_size_bytes']} bytes.",
        "",
        "## 2.2.1 Datasets licensed from rightsholders",
        "",
        "| dataset | owner | size (bytes) | modality | terms | use | consent | reserved purposes (opt-out) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["section_2_2_1_licensed_datasets"]:
        terms = ", ".join(f"{k.removeprefix('cawg.')}: {v}" for k, v in r["terms"].items() if k.startswith("cawg."))
        use = f"{r['use']['from']} to {r['use']['to'] or 'ongoing as of ' + r['use']['as_of']}"
        if r["use"]["ended_because"]:
            use += f" ({r['use']['ended_because']})"
        consent = f"at purchase: {r['consent']['at_purchase']}; at writing: {r['consent']['at_writing']}"
        if r["consent"]["revoked_at"]:
            consent += f" (revoked {r['consent']['revoked_at']})"
        reserved = ", ".join(p.removeprefix("cawg.") for p in r["opt_out"]["reserved_purposes"]) or "none"
        cells = [
            f"{r['dataset']}, license {r['license_id']}",
            f"`{r['owner']}`",
            str(r["size_bytes"]),
            ", ".join(r["modality"]),
            terms,
            use,
            consent,
            reserved,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    opt = doc["section_3_1_opt_outs"]
    lines += ["", "## 3.1 Text-and-data-mining reservations", "", opt["method"] + ".", ""]
    return "\n".join(lines)
