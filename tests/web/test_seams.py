"""Sections that appear once another branch's API exists: receipt export formats, announced node
details. Today's modules lack them; the tests give the app a stand-in and check the page uses it."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from contracts.devchain import dev_account
from contracts.models import License, LicenseStatus
from contracts.terms import Purpose
from datasov.web import views_lab
from market import audit

from .conftest import MakeClient, stub_chain

BUYER = dev_account(2).address  # the account of the test app's keystore


def delivered(license_id: int) -> License:
    return License(
        license_id, 1, BUYER, Purpose.AI_TRAINING, LicenseStatus.DELIVERED, True, False, 1, 100, 200, 150,
        0, 0, "0x" + "33" * 20, 5, bytes(32), bytes(32), bytes(32),
    )  # fmt: skip


def lab_chain(**extra: Any) -> Any:
    connect = stub_chain(
        purchases=[{"buyer": BUYER, "datasetId": 1, "licenseId": 3}],
        block_number=10,
        get_license=delivered(3),
        timestamp=1000,
        consent_revoked_at=0,
        is_license_valid=True,
        **extra,
    )
    connect.stub.deployment = SimpleNamespace(deployed_block=0)  # type: ignore[attr-defined]
    return connect


async def test_without_export_formats_the_licenses_page_offers_none(make_client: MakeClient) -> None:
    assert views_lab.export_formats() == tuple(getattr(audit, "FORMATS", ()))
    client, _ = await make_client(lab_chain())
    if not views_lab.export_formats():
        assert "/licenses/export" not in await (await client.get("/licenses")).text()
        resp = await client.get("/licenses/export?format=spdx3")
        assert resp.status == 400


async def test_export_formats_appear_and_export_every_delivered_license(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []

    async def build_receipt(_chain: Any, license_id: int, signer: Any) -> dict[str, Any]:
        return {"license": {"id": license_id}, "by": signer.address}

    def export(receipts: list[dict[str, Any]], fmt: str, *, created: int) -> dict[str, Any]:
        made.append((receipts, fmt, created))
        return {"format": fmt, "licenses": [r["license"]["id"] for r in receipts]}

    monkeypatch.setattr(audit, "FORMATS", ("spdx3", "croissant"), raising=False)
    monkeypatch.setattr(audit, "export", export, raising=False)
    monkeypatch.setattr(audit, "build_receipt", build_receipt)
    client, _ = await make_client(lab_chain())
    page = await (await client.get("/licenses")).text()
    assert 'action="/licenses/export"' in page
    assert '<option value="croissant">' in page
    resp = await client.get("/licenses/export?format=croissant")
    assert resp.status == 200
    assert "attachment" in resp.headers["Content-Disposition"]
    assert json.loads(await resp.text()) == {"format": "croissant", "licenses": [3]}
    assert made[0][1:] == ("croissant", 1000)
    assert (await client.get("/licenses/export?format=pdf")).status == 400
