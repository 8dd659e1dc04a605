"""Committed receipts of both versions (written by a devnet run): their canonical form, hash and
signature still check, so a format change that would orphan filed receipts fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

from market import audit
from market.receipts import v2

VECTORS = Path(__file__).parents[1] / "vectors"


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return loaded


def test_v1_vector_is_signed_by_its_licensee() -> None:
    receipt = _load("receipt_v1.json")
    assert receipt["version"] == 1
    body = {k: v for k, v in receipt.items() if k != "signature"}
    signer = Account.recover_message(encode_defunct(audit.canonical(body)), signature=receipt["signature"])
    assert signer == receipt["license"]["buyer"]


def test_v2_vector_hash_and_signature() -> None:
    receipt = _load("receipt_v2.json")
    assert receipt["version"] == 2
    assert v2.receipt_hash(receipt) == receipt["receipt_hash"]
    signer, problems = v2.check_seal(receipt)
    assert problems == []
    assert signer == receipt["license"]["buyer"]
    edited = {**receipt, "license": {**receipt["license"], "purpose": "data_mining"}}
    signer, problems = v2.check_seal(edited)
    assert signer != receipt["license"]["buyer"]
    assert [p.split(" ")[0] for p in problems] == ["receipt_hash"]
