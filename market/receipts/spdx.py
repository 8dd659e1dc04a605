"""A training mix as an SPDX 3.0.1 JSON-LD document (Core, Software, Dataset, AI and licensing profiles).

Per licensed dataset: a ``dataset_DatasetPackage`` (datasetType guessed from the files read,
intendedUse from the license purpose, datasetSize, ``verifiedUsing`` the commitment root and the
manifest hash, ``originatedBy`` the owner, ``validUntilTime`` the license expiry, ``externalRef``
to the purchase and key-delivery transactions) with ``hasDeclaredLicense`` and
``hasConcludedLicense`` relationships to an ``expandedlicensing_CustomLicense`` named
``LicenseRef-datasov-<chain>-<license>`` whose text is the on-chain terms and license facts as
canonical JSON (:mod:`market.receipts.facts`). With a model name, an ``ai_AIPackage`` supplied by
the lab with a ``trainedOn`` relationship to every dataset. :func:`claims` reads the facts back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .common import ReceiptError, canonical
from .facts import Claim, Entry, modalities

CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
_CI = "_:creationinfo"
_LICENSE_TEXT_TAG = "datasov consent license facts v2: "


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_iso(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def _base(f: dict[str, Any]) -> str:
    return f"urn:datasov:eip155:{f['chain_id']}"


def _agent(chain_id: int, address: str, role: str) -> dict[str, Any]:
    return {
        "type": "Organization",
        "spdxId": f"urn:datasov:eip155:{chain_id}:account:{address}",
        "name": f"{role} {address}",
        "creationInfo": _CI,
        "externalIdentifier": [
            {
                "type": "ExternalIdentifier",
                "externalIdentifierType": "other",
                "identifier": f"eip155:{chain_id}:{address}",
            }
        ],
    }


def _tx_ref(f: dict[str, Any], name: str, label: str) -> dict[str, Any]:
    return {
        "type": "ExternalRef",
        "externalRefType": "other",
        "locator": [f"eip155:{f['chain_id']}/tx/{f[name + '_tx']}"],
        "comment": f"{label}, block {f[name + '_block']}",
    }


def _dataset_elements(entry: Entry, agents: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    f = entry.facts
    base = _base(f)
    owner = agents.setdefault(f["owner"], _agent(f["chain_id"], f["owner"], "data owner"))
    license_ref = f"LicenseRef-datasov-{f['chain_id']}-{f['license_id']}"
    license_el: dict[str, Any] = {
        "type": "expandedlicensing_CustomLicense",
        "spdxId": f"{base}:license:{f['license_id']}:{license_ref}",
        "name": license_ref,
        "creationInfo": _CI,
        "simplelicensing_licenseText": _LICENSE_TEXT_TAG + canonical(f).decode(),
    }
    if f["terms_uri"]:
        license_el["expandedlicensing_seeAlso"] = [f["terms_uri"]]
    package: dict[str, Any] = {
        "type": "dataset_DatasetPackage",
        "spdxId": f"{base}:license:{f['license_id']}:dataset:{f['dataset_id']}",
        "name": f"datasov dataset {f['dataset_id']}",
        "creationInfo": _CI,
        "originatedBy": [owner["spdxId"]],
        "suppliedBy": owner["spdxId"],
        "software_primaryPurpose": "data",
        "software_downloadLocation": f"{base}:dataset:{f['dataset_id']}",
        "dataset_datasetType": modalities(entry.files) or ["noAssertion"],
        "dataset_intendedUse": f"{f['purpose']} (datasov license {f['license_id']})",
        "dataset_datasetSize": f["plaintext_size"],
        "verifiedUsing": [
            {"type": "Hash", "algorithm": "sha256", "hashValue": f["commitment_root"], "comment": "commitment_root"},
            {"type": "Hash", "algorithm": "sha256", "hashValue": f["manifest_hash"], "comment": "manifest_hash"},
        ],
        "externalRef": [_tx_ref(f, "purchase", "purchase")]
        + ([_tx_ref(f, "key_delivery", "key delivery")] if f["key_delivery_tx"] else []),
    }
    if f["expires_at"]:
        package["validUntilTime"] = iso(f["expires_at"])
    relations = [
        {
            "type": "Relationship",
            "spdxId": f"{package['spdxId']}:{kind}",
            "creationInfo": _CI,
            "from": package["spdxId"],
            "relationshipType": kind,
            "to": [license_el["spdxId"]],
        }
        for kind in ("hasDeclaredLicense", "hasConcludedLicense")
    ]
    return package, [license_el, *relations]


def export(entries: list[Entry], *, model: str | None = None, created: int) -> dict[str, Any]:
    """The SPDX 3.0.1 JSON-LD document of a training mix (``created``: unix time of writing)."""
    if not entries:
        raise ReceiptError("nothing to export: no receipts")
    first = entries[0].facts
    base = _base(first)
    lab = _agent(first["chain_id"], first["buyer"], "licensee")
    agents: dict[str, dict[str, Any]] = {first["buyer"]: lab}
    packages: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for entry in entries:
        agents.setdefault(entry.facts["buyer"], _agent(entry.facts["chain_id"], entry.facts["buyer"], "licensee"))
        package, rest = _dataset_elements(entry, agents)
        packages.append(package)
        others.extend(rest)
    roots = [p["spdxId"] for p in packages]
    if model is not None:
        ai = {
            "type": "ai_AIPackage",
            "spdxId": f"{base}:model:{quote(model, safe='')}",
            "name": model,
            "creationInfo": _CI,
            "suppliedBy": lab["spdxId"],
            "software_primaryPurpose": "model",
            "software_downloadLocation": "NOASSERTION",
            "software_packageVersion": "NOASSERTION",
            "releaseTime": iso(created),
        }
        others.append(ai)
        others.append(
            {
                "type": "Relationship",
                "spdxId": f"{ai['spdxId']}:trainedOn",
                "creationInfo": _CI,
                "from": ai["spdxId"],
                "relationshipType": "trainedOn",
                "to": roots,
            }
        )
        roots = [ai["spdxId"]]
    elements = [*agents.values(), *packages, *others]
    document = {
        "type": "SpdxDocument",
        "spdxId": f"{base}:document:{created}",
        "name": f"training data of {model}" if model else "datasov licensed training data",
        "creationInfo": _CI,
        "profileConformance": ["core", "software", "dataset", "ai", "simpleLicensing", "expandedLicensing"],
        "rootElement": roots,
        "element": [e["spdxId"] for e in elements],
    }
    info = {
        "type": "CreationInfo",
        "@id": _CI,
        "specVersion": "3.0.1",
        "created": iso(created),
        "createdBy": [lab["spdxId"]],
    }
    return {"@context": CONTEXT, "@graph": [info, *elements, document]}


def is_spdx(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("@context") == CONTEXT and isinstance(doc.get("@graph"), list)


def claims(doc: dict[str, Any]) -> list[list[Claim]]:
    """The facts the document states, one list per dataset package (raises :class:`ReceiptError`
    for a document whose datasov facts cannot be read)."""
    graph = [e for e in doc["@graph"] if isinstance(e, dict)]
    by_id = {e.get("spdxId"): e for e in graph}
    licensed = {
        r["from"]: r["to"]
        for r in graph
        if r.get("type") == "Relationship" and r.get("relationshipType") == "hasDeclaredLicense"
    }
    out: list[list[Claim]] = []
    for package in (e for e in graph if e.get("type") == "dataset_DatasetPackage"):
        pid = str(package.get("spdxId"))
        found: list[Claim] = []
        for lid in licensed.get(pid, []):
            text = str(by_id.get(lid, {}).get("simplelicensing_licenseText", ""))
            if not text.startswith(_LICENSE_TEXT_TAG):
                raise ReceiptError(f"{lid}: its licenseText is not datasov license facts")
            try:
                stated = json.loads(text.removeprefix(_LICENSE_TEXT_TAG))
            except ValueError as err:
                raise ReceiptError(f"{lid}: its licenseText does not parse: {err}") from err
            found.extend(Claim(k, v, f"{lid} licenseText") for k, v in stated.items())
            for uri in by_id.get(lid, {}).get("expandedlicensing_seeAlso", []):
                found.append(Claim("terms_uri", uri, f"{lid} seeAlso"))
        found.append(Claim("plaintext_size", package.get("dataset_datasetSize"), f"{pid} datasetSize"))
        for h in package.get("verifiedUsing", []):
            found.append(Claim(str(h.get("comment")), h.get("hashValue"), f"{pid} verifiedUsing"))
        for agent_id in package.get("originatedBy", []):
            for ident in by_id.get(agent_id, {}).get("externalIdentifier", []):
                found.append(Claim("owner", str(ident.get("identifier", "")).rsplit(":", 1)[-1], f"{pid} originatedBy"))
        for ref in package.get("externalRef", []):
            label = "key_delivery" if str(ref.get("comment", "")).startswith("key delivery") else "purchase"
            for loc in ref.get("locator", []):
                found.append(Claim(f"{label}_tx", str(loc).rsplit("/", 1)[-1], f"{pid} externalRef"))
        if "validUntilTime" in package:
            found.append(Claim("expires_at", from_iso(str(package["validUntilTime"])), f"{pid} validUntilTime"))
        out.append(found)
    return out
