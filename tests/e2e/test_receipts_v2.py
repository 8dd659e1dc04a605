"""Consent receipts, version 2: canonical JSON with a domain-tagged hash, signed by the licensee;
every field but the licensee's own ``read`` statement is re-derived from the chain, so editing any
of them (and sealing again with the lab's own key) fails verification naming the field."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.terms import Purpose
from datasov.devnet import LocalNetwork
from market import audit
from market.keystore import Keystore
from market.receipts import v2
from storage_node.client import NodeClient

from .test_receipts_v1 import CONSTRAINED, Licensed, _leaves, _licensed, _node, _tampered

FILES = [
    audit.FileRead("docs/b.txt", 12, "cd" * 32),
    audit.FileRead("docs/a.txt", 0, hashlib.sha256(b"").hexdigest()),
]


@pytest_asyncio.fixture(scope="module")
async def licensed(
    net: LocalNetwork, owner: Keystore, lab: Keystore, client: NodeClient, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Licensed]:
    yield await _licensed(net, owner, lab, client, tmp_path_factory.mktemp("staging"), CONSTRAINED)


@pytest_asyncio.fixture(scope="module")
async def receipt(net: LocalNetwork, lab: Keystore, licensed: Licensed) -> AsyncIterator[dict[str, Any]]:
    made = await audit.build_receipt(
        net.chain, licensed.license_id, lab.account, plaintext_sha256="ab" * 32, files=FILES
    )
    yield made


async def test_v2_receipt_states_the_license_terms_and_consent(
    net: LocalNetwork, licensed: Licensed, receipt: dict[str, Any]
) -> None:
    check = await audit.verify_receipt(net.chain, copy.deepcopy(receipt))
    assert check.ok, check.problems
    assert check.consent_stands
    assert (receipt["format"], receipt["version"]) == ("datasov-consent-receipt", 2)
    assert (
        receipt["receipt_hash"]
        == hashlib.sha256(
            b"datasov/consent-receipt/v2\x00"
            + audit.canonical({k: v for k, v in receipt.items() if k not in ("receipt_hash", "signature")})
        ).hexdigest()
    )
    assert receipt["terms"]["cawg"] == {
        "cawg.ai_training": "constrained",
        "cawg.ai_generative_training": "notAllowed",
        "cawg.ai_inference": "notAllowed",
        "cawg.data_mining": "constrained",
    }
    lic = await net.chain.get_license(licensed.license_id)
    assert receipt["license"]["price"] == {"amount": str(lic.price), "token": lic.payment_token}
    assert receipt["license"]["purpose"] == Purpose.AI_TRAINING.name.lower()
    purchase, delivery = receipt["transactions"]["purchase"], receipt["transactions"]["key_delivery"]
    assert purchase["block"] < delivery["block"] <= receipt["consent"]["at_writing"]["block"]
    assert receipt["consent"]["at_purchase"] == {
        "block": purchase["block"],
        "time": lic.purchased_at,
        "revoked_at": 0,
        "purpose_permitted": True,
    }
    assert receipt["consent"]["at_writing"]["license_valid"] is True
    assert [f["path"] for f in receipt["read"]["files"]] == ["docs/a.txt", "docs/b.txt"]  # canonical order


paths = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)
file_reads = st.lists(
    st.builds(audit.FileRead, paths, st.integers(0, 2**53), st.binary(min_size=32, max_size=32).map(bytes.hex)),
    max_size=6,
    unique_by=lambda f: f.path,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=file_reads, whole=st.booleans())
async def test_round_trip_of_any_files_read(
    net: LocalNetwork, lab: Keystore, receipt: dict[str, Any], files: list[audit.FileRead], whole: bool
) -> None:
    body = {k: v for k, v in receipt.items() if k != "read"}
    read = v2.read_section(plaintext_sha256="ab" * 32 if whole else None, files=files)
    if not read:
        read = {"files": []}
    sealed = audit.seal({**body, "read": read}, lab.account)
    text = json.dumps(sealed, indent=2, ensure_ascii=False)
    back = json.loads(text)
    assert back == sealed
    check = await audit.verify_receipt(net.chain, back)
    assert check.ok, check.problems
    assert back["read"]["files"] == [f.to_json() for f in sorted(files, key=lambda f: f.path)]


def _chain_paths(receipt: dict[str, Any]) -> list[tuple[str, ...]]:
    return list(_leaves({k: v for k, v in receipt.items() if k not in ("signature", "receipt_hash", "read")}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_tampering_any_field_fails_naming_it(
    net: LocalNetwork, lab: Keystore, receipt: dict[str, Any], data: st.DataObject
) -> None:
    keys = data.draw(st.sampled_from(_chain_paths(receipt)), label="path")
    path = ".".join(keys)
    forged = json.loads(json.dumps(receipt))
    parent = _node(forged, keys[:-1])
    parent[keys[-1]] = _tampered(parent[keys[-1]])
    forged = audit.seal(forged, lab.account)  # the lab signs its edit: the chain still disagrees
    if path in ("format", "version"):
        with pytest.raises(audit.ReceiptError, match="format, version"):
            await audit.verify_receipt(net.chain, forged)
        return
    check = await audit.verify_receipt(net.chain, forged)
    assert not check.ok
    assert any(p.startswith(path + " ") or f"({path})" in p for p in check.problems), (path, check.problems)


async def test_edits_without_resealing_break_the_hash_and_signature(
    net: LocalNetwork, lab: Keystore, receipt: dict[str, Any]
) -> None:
    forged = json.loads(json.dumps(receipt))
    forged["read"]["files"][0]["sha256"] = "ee" * 32  # the lab disowns what it said it read
    check = await audit.verify_receipt(net.chain, forged)
    assert not check.ok
    assert any(p.startswith("receipt_hash ") for p in check.problems), check.problems
    assert any(p.startswith("signed by ") for p in check.problems), check.problems

    for bad_read, named in (
        ({"files": [{"path": "a", "size": -1, "sha256": "00" * 32}]}, "read.files.0.size"),
        (
            {"files": [{"path": "b", "size": 1, "sha256": "00" * 32}, {"path": "a", "size": 1, "sha256": "00" * 32}]},
            "read.files must be sorted",
        ),
        ({"plaintext_sha256": "XY"}, "read.plaintext_sha256"),
        ({"other": 1}, "read must hold"),
    ):
        forged = audit.seal({**receipt, "read": bad_read}, lab.account)
        check = await audit.verify_receipt(net.chain, forged)
        assert not check.ok
        assert any(p.startswith(named) for p in check.problems), (named, check.problems)
    with pytest.raises(audit.ReceiptError, match=r"read\.files\.0\.sha256"):
        v2.read_section(files=[audit.FileRead("x", 1, "not hex")])


async def test_only_the_licensee_writes_a_receipt(net: LocalNetwork, owner: Keystore, licensed: Licensed) -> None:
    with pytest.raises(audit.ReceiptError, match="belongs to"):
        await audit.build_receipt(net.chain, licensed.license_id, owner.account)
