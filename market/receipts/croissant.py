"""A training mix as one MLCommons Croissant 1.1 JSON-LD document, with the RAI fields that apply.

The mix is one ``sc:Dataset``; each licensed dataset is a ``cr:FileSet`` in its ``distribution``
(with a ``cr:FileObject`` per file the lab read, when its receipt lists them), and its license is
an ODRL ``Agreement`` in ``usageInfo``: uid the license, assigner the owner, assignee the lab,
target the dataset's commitment, one permission (or prohibition) per CAWG purpose as ``odrl:use``
constrained by ``odrl:purpose``, the license expiry as an ``odrl:dateTime`` constraint, and
``odrl:commercialize`` / ``odrl:derive`` / ``odrl:attribute`` from the other terms. Each agreement
also carries the on-chain facts (:mod:`market.receipts.facts`) as ``datasov:``-prefixed keys, read
back by :func:`claims`. Everything is inline: no remote ``@context`` to fetch.
"""

from __future__ import annotations

from typing import Any

from .common import ReceiptError
from .facts import FACT_KEYS, Claim, Entry
from .spdx import from_iso, iso

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
_VOCAB = "urn:datasov:vocab:"
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "name": {"@container": "@language"},
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "datasov": _VOCAB,
}
_PURPOSES = ("cawg.ai_training", "cawg.ai_generative_training", "cawg.ai_inference", "cawg.data_mining")


def _urn(f: dict[str, Any], *parts: object) -> str:
    return ":".join(["urn:datasov:eip155", str(f["chain_id"]), *map(str, parts)])


def target_of(f: dict[str, Any]) -> str:
    return _urn(f, "dataset", f["dataset_id"], "commitment", f["commitment_root"])


def _rule(action: str, f: dict[str, Any], purpose: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"odrl:target": {"@id": target_of(f)}, "odrl:action": {"@id": action}}
    constraints: list[dict[str, Any]] = []
    if purpose is not None:
        constraints.append(
            {
                "odrl:leftOperand": {"@id": "odrl:purpose"},
                "odrl:operator": {"@id": "odrl:eq"},
                "odrl:rightOperand": purpose,
            }
        )
    if f["expires_at"]:
        constraints.append(
            {
                "odrl:leftOperand": {"@id": "odrl:dateTime"},
                "odrl:operator": {"@id": "odrl:lt"},
                "odrl:rightOperand": {"@value": iso(f["expires_at"]), "@type": "xsd:dateTime"},
            }
        )
    if constraints:
        rule["odrl:constraint"] = constraints
    return rule


def agreement(f: dict[str, Any]) -> dict[str, Any]:
    """The ODRL Agreement a license amounts to."""
    permissions: list[dict[str, Any]] = []
    prohibitions: list[dict[str, Any]] = []
    for purpose in _PURPOSES:
        rule = _rule("odrl:use", f, purpose)
        if f[purpose] == "notAllowed":
            prohibitions.append(rule)
            continue
        if f[purpose] == "constrained":
            rule["dct:description"] = f"constrained: under the conditions of the terms text {f['terms_uri']}"
        if f["attribution_required"]:
            rule["odrl:duty"] = [{"odrl:action": {"@id": "odrl:attribute"}}]
        permissions.append(rule)
    for flag, action in (("commercial_use", "odrl:commercialize"), ("derivatives_allowed", "odrl:derive")):
        (permissions if f[flag] else prohibitions).append(_rule(action, f))
    out: dict[str, Any] = {
        "@type": "odrl:Agreement",
        "odrl:uid": {"@id": _urn(f, "license", f["license_manager"], f["license_id"])},
        "odrl:assigner": {"@id": _urn(f, "account", f["owner"])},
        "odrl:assignee": {"@id": _urn(f, "account", f["buyer"])},
        "odrl:permission": permissions,
        "odrl:prohibition": prohibitions,
        "dct:issued": {"@value": iso(f["purchased_at"]), "@type": "xsd:dateTime"},
        **{f"datasov:{k}": f[k] for k in FACT_KEYS},
    }
    if f["terms_uri"]:
        out["dct:references"] = {"@id": f["terms_uri"]}
    return out


def _fileset(entry: Entry) -> list[dict[str, Any]]:
    f = entry.facts
    set_id = f"license-{f['license_id']}-dataset-{f['dataset_id']}"
    files: list[dict[str, Any]] = [
        {
            "@type": "cr:FileObject",
            "@id": f"{set_id}/{i}",
            "name": read["path"],
            "contentUrl": read["path"],
            "contentSize": f"{read['size']} B",
            "encodingFormat": "application/octet-stream",
            "sha256": read["sha256"],
            "containedIn": {"@id": set_id},
        }
        for i, read in enumerate(entry.files)
    ]
    fileset = {
        "@type": "cr:FileSet",
        "@id": set_id,
        "name": f"datasov dataset {f['dataset_id']} (license {f['license_id']})",
        "description": f"commitment root {f['commitment_root']}, {f['plaintext_size']} bytes of plaintext",
        "encodingFormat": "application/octet-stream",
        "includes": "**",
    }
    return [fileset, *files]


def export(entries: list[Entry], *, model: str | None = None, created: int) -> dict[str, Any]:
    """The Croissant 1.1 JSON-LD document of a training mix (``created``: unix time of writing)."""
    if not entries:
        raise ReceiptError("nothing to export: no receipts")
    fs = [e.facts for e in entries]
    purposes = sorted({f["purpose"] for f in fs})
    reserved = sorted({p for f in fs for p in _PURPOSES if f[p] == "notAllowed"})
    first, last = min(f["purchased_at"] for f in fs), max(f["checked_at_block"] for f in fs)
    ids = ", ".join(str(f["license_id"]) for f in fs)
    name = f"training data of {model}" if model else "datasov licensed training data"
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": name,
        "description": f"{len(entries)} dataset(s) licensed on datasov (chain {fs[0]['chain_id']}), "
        "each under a consent license whose terms and transactions are on-chain",
        "url": _urn(fs[0], "training-mix", created),
        "creator": {
            "@type": "sc:Organization",
            "name": f"licensee {fs[0]['buyer']}",
            "url": _urn(fs[0], "account", fs[0]["buyer"]),
        },
        "datePublished": iso(created),
        "version": "1.0.0",
        "citeAs": f"datasov consent licenses {ids} on chain {fs[0]['chain_id']}",
        "license": sorted({f["terms_uri"] for f in fs if f["terms_uri"]})
        or [_urn(f, "license", f["license_id"]) for f in fs],
        "distribution": [x for e in entries for x in _fileset(e)],
        "usageInfo": [agreement(f) for f in fs],
        "rai:dataCollection": "Licensed from each dataset's owner through a datasov consent license (an on-chain "
        "purchase, then the owner's key delivery after a consent check); no scraping.",
        "rai:dataCollectionType": ["Licensed data"],
        "rai:dataCollectionTimeframe": [iso(first), iso(created)],
        "rai:dataUseCases": [f"licensed purpose: {p}" for p in purposes],
        "rai:dataLimitations": [f"terms reserve {p} (notAllowed)" for p in reserved]
        + [f"license {f['license_id']} expires {iso(f['expires_at'])}" for f in fs if f["expires_at"]]
        + [f"checked on-chain up to block {last}"],
    }


def is_croissant(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("conformsTo") == CONFORMS_TO and "usageInfo" in doc


def _id(node: Any) -> str:
    return str(node.get("@id", "")) if isinstance(node, dict) else str(node)


def claims(doc: dict[str, Any]) -> list[list[Claim]]:
    """The facts the document states, one list per agreement in ``usageInfo``."""
    out: list[list[Claim]] = []
    agreements = doc["usageInfo"] if isinstance(doc["usageInfo"], list) else [doc["usageInfo"]]
    for i, a in enumerate(agreements):
        where = f"usageInfo.{i}"
        found = [Claim(k.removeprefix("datasov:"), v, where) for k, v in a.items() if k.startswith("datasov:")]
        found.append(Claim("owner", _id(a.get("odrl:assigner")).rsplit(":", 1)[-1], f"{where} odrl:assigner"))
        found.append(Claim("buyer", _id(a.get("odrl:assignee")).rsplit(":", 1)[-1], f"{where} odrl:assignee"))
        found.append(Claim("license_id", int(_id(a.get("odrl:uid")).rsplit(":", 1)[-1]), f"{where} odrl:uid"))
        issued = a.get("dct:issued", {})
        found.append(Claim("purchased_at", from_iso(str(issued.get("@value"))), f"{where} dct:issued"))
        for kind in ("permission", "prohibition"):
            for j, rule in enumerate(a.get(f"odrl:{kind}", [])):
                at = f"{where} odrl:{kind}.{j}"
                parts = _id(rule.get("odrl:target")).split(":")
                found.append(Claim("dataset_id", int(parts[-3]), f"{at} odrl:target"))
                found.append(Claim("commitment_root", parts[-1], f"{at} odrl:target"))
                for c in rule.get("odrl:constraint", []):
                    left = _id(c.get("odrl:leftOperand"))
                    if left == "odrl:purpose":
                        use = (
                            "notAllowed"
                            if kind == "prohibition"
                            else ("constrained" if "dct:description" in rule else "allowed")
                        )
                        found.append(Claim(str(c.get("odrl:rightOperand")), use, f"{at} odrl:constraint"))
                    elif left == "odrl:dateTime":
                        found.append(
                            Claim(
                                "expires_at", from_iso(str(c["odrl:rightOperand"]["@value"])), f"{at} odrl:constraint"
                            )
                        )
        out.append(found)
    return out
