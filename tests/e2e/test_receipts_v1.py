"""Consent receipts, version 1 (still verified).

Every field a receipt states is re-derived from the chain, so a licensee who
edits any of them (and signs again with its own key) gets a verification failure naming the field;
after the owner updates the offer, a receipt states and is checked against the terms the license
was bought under."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from eth_account.messages import encode_defunct
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.terms import LicenseTerms, Permission, Purpose
from datasov.devnet import LocalNetwork
from market import audit, buyer, key_agent, publisher
from market.keystore import Keystore
from storage_node.client import NodeClient

from .conftest import LAYOUT, PRICE, SAMPLE, accept_placements


@dataclass
class Licensed:
    license_id: int
    dataset_id: int


async def _licensed(
    net: LocalNetwork, owner: Keystore, lab: Keystore, client: NodeClient, staging: Path, terms: LicenseTerms
) -> Licensed:
    pub = await publisher.publish(
        SAMPLE,
        chain=net.chain,
        keystore=owner,
        directory=net.directory,
        client=client,
        staging=staging,
        options=publisher.PublishOptions(layout=LAYOUT, price=PRICE, terms=terms, epochs=40),
    )
    await accept_placements(net, pub)
    license_id = await buyer.buy(net.chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
    await key_agent.KeyAgent(net.chain, owner, home=owner.path.parent).tick()
    return Licensed(license_id, pub.dataset_id)


def _resign(receipt: dict[str, Any], lab: Keystore) -> dict[str, Any]:
    """What a dishonest licensee does after editing its receipt: sign it again, with its own key."""
    body = {k: v for k, v in receipt.items() if k != "signature"}
    signed = lab.account.sign_message(encode_defunct(audit.canonical(body)))
    return {**body, "signature": "0x" + bytes(signed.signature).hex()}


CONSTRAINED = LicenseTerms(
    ai_training=Permission.CONSTRAINED, data_mining=Permission.CONSTRAINED, revocable=False
).with_text("Train only on the public split.", "https://example.org/terms")


@pytest_asyncio.fixture(scope="module")
async def valid_receipt(
    net: LocalNetwork, owner: Keystore, lab: Keystore, client: NodeClient, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    lic = await _licensed(net, owner, lab, client, tmp_path_factory.mktemp("staging"), CONSTRAINED)
    receipt = await audit.build_receipt_v1(net.chain, lic.license_id, lab.account, content_sha256="ab" * 32)
    check = await audit.verify_receipt(net.chain, copy.deepcopy(receipt))
    assert check.ok, check.problems
    yield receipt


def _leaves(obj: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path


def _tampered(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        if value and all(c in "0123456789abcdefx" for c in value.lower()):
            last = value[-1]
            return value[:-1] + ("1" if last != "1" else "2")
        return value + " (amended)"
    return "forged"


def _node(receipt: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = receipt
    for key in path:
        node = node[key]
    return node


def _paths(receipt: dict[str, Any]) -> list[tuple[str, ...]]:
    """Every leaf field the receipt states about the chain (not the signature, not the licensee's
    own ``fetched`` statement), as a key path (CAWG entry names contain dots themselves)."""
    return list(_leaves({k: v for k, v in receipt.items() if k not in ("signature", "fetched")}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.asyncio
async def test_tampering_any_field_fails_verification_naming_it(
    net: LocalNetwork, lab: Keystore, valid_receipt: dict[str, Any], data: st.DataObject
) -> None:
    keys = data.draw(st.sampled_from(_paths(valid_receipt)), label="path")
    path = ".".join(keys)
    forged = json.loads(json.dumps(valid_receipt))
    parent = _node(forged, keys[:-1])
    parent[keys[-1]] = _tampered(parent[keys[-1]])
    forged = _resign(forged, lab)
    if path in ("format", "version"):
        with pytest.raises(audit.ReceiptError, match="format, version"):
            await audit.verify_receipt(net.chain, forged)
        return
    check = await audit.verify_receipt(net.chain, forged)
    assert not check.ok
    assert any(p.startswith(path + " ") or f"({path})" in p or p.startswith(path + ":") for p in check.problems), (
        path,
        check.problems,
    )


@pytest.mark.asyncio
async def test_tampered_cawg_entry_and_tdmrep_are_named(
    net: LocalNetwork, lab: Keystore, valid_receipt: dict[str, Any]
) -> None:
    for edit, named in (
        (lambda r: r["terms"]["cawg"]["data"]["entries"]["cawg.ai_training"].update(use="allowed"), "terms.cawg"),
        (lambda r: r["terms"]["cawg"]["data"]["entries"]["cawg.ai_inference"].update(use="allowed"), "terms.cawg"),
        (lambda r: r["terms"]["tdmrep"].update({"tdm-reservation": 1}), "terms.tdmrep.tdm-reservation"),
        (lambda r: r["terms"]["tdmrep"].pop("tdm-policy"), "terms.tdmrep.tdm-policy"),
        (lambda r: r["consent"].update(license_valid=False), "consent.license_valid"),
        (lambda r: r["consent"].update(revoked_at=1), "consent.revoked_at"),
        (lambda r: r.update(extra={"note": "trust me"}), "extra"),
    ):
        forged = json.loads(json.dumps(valid_receipt))
        edit(forged)
        check = await audit.verify_receipt(net.chain, _resign(forged, lab))
        assert not check.ok
        assert any(p.startswith(named) for p in check.problems), (named, check.problems)


@pytest.mark.asyncio
async def test_receipt_after_update_offer_states_and_checks_the_terms_bought(
    net: LocalNetwork, owner: Keystore, lab: Keystore, client: NodeClient, tmp_path: Path
) -> None:
    lic = await _licensed(net, owner, lab, client, tmp_path / "staging", CONSTRAINED)
    # the owner changes the offer after the sale; the license keeps the terms it was bought under
    await net.chain.update_offer(
        owner.account, lic.dataset_id, price=PRICE, terms=LicenseTerms(ai_training=Permission.ALLOWED)
    )
    assert (await net.chain.get_dataset(lic.dataset_id)).terms_version == 2
    receipt = await audit.build_receipt_v1(net.chain, lic.license_id, lab.account)
    assert receipt["terms"]["ai_training"] == "constrained"
    assert receipt["terms"]["terms_uri"] == "https://example.org/terms"
    assert receipt["terms"]["cawg"] == CONSTRAINED.to_cawg()
    check = await audit.verify_receipt(net.chain, copy.deepcopy(receipt))
    assert check.ok, check.problems
    assert any("version 1" in n for n in check.notes)

    forged = json.loads(json.dumps(receipt))
    forged["terms"]["ai_training"] = "allowed"  # claims the laxer current terms
    check = await audit.verify_receipt(net.chain, _resign(forged, lab))
    assert not check.ok
    assert any(p.startswith("terms.ai_training ") for p in check.problems), check.problems
