"""Failures become pages a person can act on: the chain down, a contract refusal, a key still due."""

from __future__ import annotations

import time

from contracts import errors
from contracts.models import License, LicenseStatus
from contracts.terms import Purpose

from .conftest import MakeClient, csrf_of, stub_chain, unreachable_chain

NOW = int(time.time())


def pending_license(deadline: int) -> License:
    return License(
        7, 1, "0x" + "22" * 20, Purpose.AI_TRAINING, LicenseStatus.PENDING, True, False, 1, NOW - 60, deadline,
        0, 0, 0, "0x" + "33" * 20, 5, bytes(32), bytes(32), bytes(32),
    )  # fmt: skip


async def test_an_unreachable_chain_is_a_503_page_saying_what_to_check(make_client: MakeClient) -> None:
    client, _ = await make_client(unreachable_chain)
    for path in ("/", "/mine"):  # each attempt costs web3 its retries (about 2 s)
        resp = await client.get(path)
        assert resp.status == 503, path
        text = await resp.text()
        assert "The chain cannot be reached" in text
        assert "devnet up" in text
        assert "config.json" in text
    assert (await client.get("/node")).status == 200  # no node configured: says how, needs no chain


async def test_a_contract_refusal_is_a_page_with_its_reason_in_words(make_client: MakeClient) -> None:
    refusal = errors.revert_class("PurposeNotAllowed")(
        "PurposeNotAllowed(datasetId=3, purpose=1)", values={"datasetId": 3, "purpose": 1}
    )
    client, _ = await make_client(stub_chain(purchase=refusal, dataset_count=0))
    csrf = csrf_of(await (await client.get("/")).text())
    form = {"csrf": csrf, "purpose": "ai_generative_training", "max_price": "5", "terms_version": "1"}
    resp = await client.post("/datasets/3/buy", data=form)
    assert resp.status == 409
    text = await resp.text()
    assert "The contract refused" in text
    assert "dataset 3 does not allow ai_generative_training" in text
    assert "PurposeNotAllowed" in text
    assert "Nothing was changed" in text


async def test_a_key_not_delivered_says_how_long_before_a_refund(make_client: MakeClient) -> None:
    connect = stub_chain(get_license=pending_license(NOW + 300), timestamp=NOW, dataset_count=0)
    client, _ = await make_client(connect)
    csrf = csrf_of(await (await client.get("/")).text())
    resp = await client.post("/licenses/7/fetch", data={"csrf": csrf})
    assert resp.status == 409
    text = await resp.text()
    assert "The key has not been delivered yet" in text
    assert "(in 5 min)" in text
    assert "take your payment back" in text


async def test_a_key_past_its_deadline_points_to_the_refund(make_client: MakeClient) -> None:
    connect = stub_chain(get_license=pending_license(NOW - 1), timestamp=NOW, dataset_count=0)
    client, _ = await make_client(connect)
    csrf = csrf_of(await (await client.get("/")).text())
    text = await (await client.post("/licenses/7/fetch", data={"csrf": csrf})).text()
    assert "Refund button" in text


async def test_bad_form_input_is_a_400_naming_the_field_and_nothing_is_sent(make_client: MakeClient) -> None:
    connect = stub_chain(purchase=7, dataset_count=0)
    client, _ = await make_client(connect)
    csrf = csrf_of(await (await client.get("/")).text())
    for form, words in (
        ({"purpose": "ai_training", "max_price": "lots", "terms_version": "1"}, "max price"),
        ({"purpose": "poetry", "max_price": "5", "terms_version": "1"}, "unknown purpose"),
        ({"purpose": "ai_training", "max_price": "5", "terms_version": "x"}, "terms_version"),
    ):
        resp = await client.post("/datasets/1/buy", data={"csrf": csrf, **form})
        assert resp.status == 400
        assert words in await resp.text()
    publish = {"csrf": csrf, "path": "/no/such/folder", "k": "4", "n": "10"}
    resp = await client.post("/mine/publish", data=publish)
    assert resp.status == 400
    assert "no file or folder" in await resp.text()
    assert "purchase" not in connect.stub.calls  # type: ignore[attr-defined]
