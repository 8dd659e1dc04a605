"""One document for a training mix of three licensed datasets with different terms (one revoked
after purchase): SPDX 3.0.1 checked with the SPDX project's own 3.0.1 model bindings, Croissant 1.1
checked with mlcroissant, the EU AI Act licensed-data summary; exported SPDX and Croissant
documents verify against the chain, and tampering with any fact the chain fixes fails naming it."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlcroissant as mlc
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spdx_python_model.bindings.v3_0_1 import model as spdx_model

from contracts.terms import LicenseTerms, Permission
from datasov.devnet import LocalNetwork
from market import audit
from market.keystore import Keystore
from market.receipts import facts, spdx
from storage_node.client import NodeClient

from .conftest import SAMPLE
from .test_receipts_v1 import CONSTRAINED, _licensed, _tampered

CREATED = 1_900_000_000
OPEN_TERMS = LicenseTerms(
    ai_training=Permission.ALLOWED,
    ai_generative_training=Permission.ALLOWED,
    ai_inference=Permission.ALLOWED,
    data_mining=Permission.ALLOWED,
    commercial_use=True,
    derivatives_allowed=True,
    revocable=True,
    license_duration=30 * 86400,
)
NO_MINING = LicenseTerms(ai_training=Permission.ALLOWED, data_mining=Permission.NOT_ALLOWED, revocable=True)


def _files_of(root: Path) -> list[audit.FileRead]:
    return [
        audit.FileRead(p.relative_to(root).as_posix(), p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


@dataclass
class Mix:
    receipts: list[dict[str, Any]]
    revoked_dataset: int


@pytest_asyncio.fixture(scope="module")
async def mix(
    net: LocalNetwork, owner: Keystore, lab: Keystore, client: NodeClient, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Mix]:
    licensed = [
        await _licensed(net, owner, lab, client, tmp_path_factory.mktemp("staging"), terms)
        for terms in (CONSTRAINED, OPEN_TERMS, NO_MINING)
    ]
    await net.chain.revoke_consent(owner.account, licensed[2].dataset_id)  # after the lab bought and got its key
    files = _files_of(SAMPLE)
    receipts = [
        await audit.build_receipt(net.chain, lic.license_id, lab.account, files=files if i != 1 else None)
        for i, lic in enumerate(licensed)
    ]
    for receipt in receipts:
        check = await audit.verify_receipt(net.chain, json.loads(json.dumps(receipt)))
        assert check.ok, check.problems
    yield Mix(receipts, licensed[2].dataset_id)


def _spdx_validate(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Read the document with the SPDX 3.0.1 model bindings (types, enumerations, known properties),
    link every reference, write it back (required properties, cardinalities); the graph written
    back, with blank-node names normalised."""
    objects = spdx_model.SHACLObjectSet()
    spdx_model.JSONLDDeserializer().read(io.StringIO(json.dumps(doc)), objects)
    assert objects.link() == set()  # every reference resolves inside the document
    out = io.BytesIO()
    spdx_model.JSONLDSerializer().write(objects, out)
    graph: list[dict[str, Any]] = json.loads(out.getvalue())["@graph"]
    return graph


def _normalised(graph: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for e in graph:
        e = {k: v for k, v in e.items() if k not in ("creationInfo", "@id")}  # blank-node names
        key = e.pop("spdxId", None) or e["type"]
        out[key] = {
            k: sorted(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else v for k, v in e.items()
        }
    return out


def test_spdx_export_passes_the_spdx_3_0_1_model(mix: Mix) -> None:
    doc = audit.export(mix.receipts, "spdx3", model="lab llm/7b", created=CREATED)  # any name: quoted in its IRI
    assert _normalised(_spdx_validate(doc)) == _normalised(doc["@graph"])  # nothing dropped or renamed
    graph = doc["@graph"]
    packages = [e for e in graph if e["type"] == "dataset_DatasetPackage"]
    assert len(packages) == 3
    assert packages[0]["dataset_datasetType"] == ["structured", "text"]  # .csv, .txt in the files read
    assert packages[1]["dataset_datasetType"] == ["noAssertion"]  # no file list in that receipt
    assert packages[1]["validUntilTime"] == spdx.iso(mix.receipts[1]["license"]["expires_at"])
    trained = [e for e in graph if e.get("relationshipType") == "trainedOn"]
    assert [sorted(t["to"]) for t in trained] == [sorted(p["spdxId"] for p in packages)]
    assert next(e for e in graph if e["type"] == "SpdxDocument")["rootElement"] == [trained[0]["from"]]
    bad = json.loads(json.dumps(doc))
    next(e for e in bad["@graph"] if e["type"] == "dataset_DatasetPackage")["dataset_datasetType"] = ["tables"]
    with pytest.raises(ValueError, match="'tables' is not a valid value"):  # the validator is live
        _spdx_validate(bad)


@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")  # rdflib, under mlcroissant
def test_croissant_export_passes_mlcroissant(mix: Mix, caplog: pytest.LogCaptureFixture) -> None:
    doc = audit.export(mix.receipts, "croissant", model="lab-llm-7b", created=CREATED)
    with caplog.at_level(logging.WARNING):
        dataset = mlc.Dataset(jsonld=json.loads(json.dumps(doc)))
    assert dataset.metadata.ctx.issues.errors == set()
    assert dataset.metadata.ctx.issues.warnings == set()
    agreements = doc["usageInfo"]
    assert [a["@type"] for a in agreements] == ["odrl:Agreement"] * 3
    no_mining = agreements[2]
    prohibited = [c["odrl:rightOperand"] for r in no_mining["odrl:prohibition"] for c in r.get("odrl:constraint", [])]
    assert "cawg.data_mining" in prohibited
    assert no_mining["odrl:assignee"]["@id"].endswith(mix.receipts[2]["license"]["buyer"])
    expiring = agreements[1]["odrl:permission"][0]["odrl:constraint"]
    assert (expiring[1]["odrl:leftOperand"], expiring[1]["odrl:operator"]) == (
        {"@id": "odrl:dateTime"},
        {"@id": "odrl:lt"},
    )
    broken = json.loads(json.dumps(doc))
    del next(d for d in broken["distribution"] if d["@type"] == "cr:FileSet")["includes"]
    with pytest.raises(mlc.ValidationError):  # the validator is live
        mlc.Dataset(jsonld=broken)


def test_eu_ai_act_summary_shows_consent_at_use_and_its_end(mix: Mix) -> None:
    summary = audit.export(mix.receipts, "eu-ai-act", model="lab-llm-7b", created=CREATED)
    rows = summary["section_2_2_1_licensed_datasets"]
    assert [r["opt_out"]["reserved_purposes"] for r in rows] == [
        ["cawg.ai_generative_training", "cawg.ai_inference"],
        [],
        ["cawg.ai_generative_training", "cawg.ai_inference", "cawg.data_mining"],
    ]
    assert rows[0]["modality"] == ["structured", "text"]
    revoked = rows[2]
    assert revoked["consent"]["at_purchase"] == "valid"
    assert revoked["consent"]["at_writing"] == "ended"
    revoked_at = mix.receipts[2]["consent"]["at_writing"]["revoked_at"]
    assert revoked["consent"]["revoked_at"] == revoked["use"]["to"] == spdx.iso(revoked_at)
    assert revoked["use"]["ended_because"].startswith("owner revoked consent")
    assert rows[0]["use"]["to"] is None  # irrevocable terms, no expiry: still in use
    assert rows[0]["consent"]["at_writing"] == "valid"
    assert summary["total_size_bytes"] == sum(r["dataset"]["plaintext_size"] for r in mix.receipts)
    text = audit.summary_markdown(summary)
    assert text.count("\n| datasov dataset ") == 3
    assert f"(revoked {spdx.iso(revoked_at)})" in text


@pytest.mark.parametrize("fmt", ["spdx3", "croissant"])
async def test_exported_documents_verify_against_the_chain(net: LocalNetwork, mix: Mix, fmt: str) -> None:
    doc = audit.export(mix.receipts, fmt, created=CREATED)
    check = await audit.verify_document(net.chain, json.loads(json.dumps(doc)))
    assert check.ok, check.problems
    assert not check.consent_stands  # one license ended with its revocable consent
    assert any(f"dataset {mix.revoked_dataset} was revoked" in n for n in check.notes)


def _package(doc: dict[str, Any], i: int) -> dict[str, Any]:
    return [e for e in doc["@graph"] if e["type"] == "dataset_DatasetPackage"][i]


def _license_text(doc: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> None:
    for e in doc["@graph"]:
        if e["type"] == "expandedlicensing_CustomLicense":
            stated = json.loads(e["simplelicensing_licenseText"].removeprefix(spdx._LICENSE_TEXT_TAG))
            edit(stated)
            e["simplelicensing_licenseText"] = spdx._LICENSE_TEXT_TAG + json.dumps(stated)
            return


SPDX_EDITS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("commitment_root", lambda d: _package(d, 0)["verifiedUsing"][0].update(hashValue="00" * 32)),
    ("manifest_hash", lambda d: _package(d, 0)["verifiedUsing"][1].update(hashValue="11" * 32)),
    ("plaintext_size", lambda d: _package(d, 0).update(dataset_datasetSize=1)),
    ("expires_at", lambda d: _package(d, 1).update(validUntilTime="2099-01-01T00:00:00Z")),
    ("purchase_tx", lambda d: _package(d, 0)["externalRef"][0].update(locator=["eip155:1/tx/0x" + "22" * 32])),
    ("cawg.ai_inference", lambda d: _license_text(d, lambda s: s.update({"cawg.ai_inference": "allowed"}))),
    ("buyer", lambda d: _license_text(d, lambda s: s.update(buyer="0x" + "33" * 20))),
    ("purchased_at", lambda d: _license_text(d, lambda s: s.update(purchased_at=s["purchased_at"] - 86400))),
    (
        "terms_uri",
        lambda d: next(e for e in d["@graph"] if "expandedlicensing_seeAlso" in e).update(
            expandedlicensing_seeAlso=["https://example.org/laxer-terms"]
        ),
    ),
]


def _allow(agreement: dict[str, Any], purpose: str) -> None:
    """Move the prohibition of ``purpose`` to the permissions (claim the terms allowed it)."""
    rules = agreement["odrl:prohibition"]
    rule = next(r for r in rules if any(c["odrl:rightOperand"] == purpose for c in r.get("odrl:constraint", [])))
    rules.remove(rule)
    agreement["odrl:permission"].append(rule)


CROISSANT_EDITS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    (
        "commitment_root",
        lambda d: d["usageInfo"][0]["odrl:permission"][0]["odrl:target"].update(
            {"@id": d["usageInfo"][0]["odrl:permission"][0]["odrl:target"]["@id"][:-64] + "00" * 32}
        ),
    ),
    ("buyer", lambda d: d["usageInfo"][0]["odrl:assignee"].update({"@id": "urn:x:account:0x" + "44" * 20})),
    ("owner", lambda d: d["usageInfo"][0]["odrl:assigner"].update({"@id": "urn:x:account:0x" + "55" * 20})),
    ("purchased_at", lambda d: d["usageInfo"][0]["dct:issued"].update({"@value": "2001-01-01T00:00:00Z"})),
    ("cawg.data_mining", lambda d: _allow(d["usageInfo"][2], "cawg.data_mining")),
    (
        "expires_at",
        lambda d: d["usageInfo"][1]["odrl:permission"][0]["odrl:constraint"][1]["odrl:rightOperand"].update(
            {"@value": "2099-01-01T00:00:00Z"}
        ),
    ),
]


@pytest.mark.parametrize(
    ("fmt", "named", "edit"), [("spdx3", *e) for e in SPDX_EDITS] + [("croissant", *e) for e in CROISSANT_EDITS]
)
async def test_tampering_a_chain_fixed_field_is_named(
    net: LocalNetwork, mix: Mix, fmt: str, named: str, edit: Callable[[dict[str, Any]], None]
) -> None:
    doc = json.loads(json.dumps(audit.export(mix.receipts, fmt, created=CREATED)))
    edit(doc)
    check = await audit.verify_document(net.chain, doc)
    assert not check.ok
    assert any(p.startswith(named + " ") for p in check.problems), (named, check.problems)


FACTS_CHECKED = [k for k in facts.FACT_KEYS if k != "checked_at_block"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(FACTS_CHECKED), which=st.integers(0, 2), fmt=st.sampled_from(["spdx3", "croissant"]))
async def test_tampering_any_stated_fact_is_named(net: LocalNetwork, mix: Mix, key: str, which: int, fmt: str) -> None:
    doc = json.loads(json.dumps(audit.export(mix.receipts, fmt, created=CREATED)))
    if fmt == "croissant":
        doc["usageInfo"][which][f"datasov:{key}"] = _tampered(doc["usageInfo"][which][f"datasov:{key}"])
    else:
        licenses = [e for e in doc["@graph"] if e["type"] == "expandedlicensing_CustomLicense"]
        stated = json.loads(licenses[which]["simplelicensing_licenseText"].removeprefix(spdx._LICENSE_TEXT_TAG))
        stated[key] = _tampered(stated[key])
        licenses[which]["simplelicensing_licenseText"] = spdx._LICENSE_TEXT_TAG + json.dumps(stated)
    check = await audit.verify_document(net.chain, doc)
    assert not check.ok
    assert any(p.startswith(key + " ") for p in check.problems), (key, check.problems)


async def test_documents_that_are_not_ours_are_refused(net: LocalNetwork, mix: Mix) -> None:
    with pytest.raises(audit.ReceiptError, match="not a consent receipt"):
        await audit.verify_document(net.chain, {"@context": "https://example.org", "@graph": []})
    with pytest.raises(audit.ReceiptError, match="only version-2"):
        audit.export([{"format": "datasov-consent-receipt", "version": 1}], "spdx3", created=CREATED)
    with pytest.raises(audit.ReceiptError, match="unknown export format"):
        audit.export(mix.receipts, "cyclonedx", created=CREATED)
    doc = audit.export(mix.receipts, "spdx3", created=CREATED)
    _license_text(doc, lambda s: s.pop("license_id"))
    check = await audit.verify_document(net.chain, doc)
    assert not check.ok
    assert any("cannot tell which license" in p for p in check.problems), check.problems
