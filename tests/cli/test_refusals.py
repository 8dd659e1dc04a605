"""Contract refusals in words: purposes by name, deadlines as local times, the raw name kept."""

from __future__ import annotations

import datetime

from contracts import errors
from datasov.cli import refusals


def revert(name: str, **values: object) -> errors.ContractRevert:
    return errors.revert_class(name)(f"{name}(...)", values=dict(values), function="purchase")


def test_purpose_is_named() -> None:
    text = refusals.describe(revert("PurposeNotAllowed", datasetId=2, purpose=1))
    assert text == "dataset 2 does not allow ai_generative_training"


def test_deadline_is_a_local_time() -> None:
    deadline = 1796118035
    text = refusals.describe(revert("RefundNotYetAllowed", licenseId=7, deadline=deadline))
    local = datetime.datetime.fromtimestamp(deadline).strftime("%Y-%m-%d %H:%M:%S")
    assert local in text
    assert "license 7" in text
    assert str(deadline) not in text


def test_json_keeps_the_name_and_values() -> None:
    out = refusals.to_json(revert("PurposeNotAllowed", datasetId=2, purpose=1))
    assert out["name"] == "PurposeNotAllowed"
    assert out["values"] == {"datasetId": 2, "purpose": 1}
    assert "ai_generative_training" in out["message"]


def test_unknown_or_malformed_keeps_the_raw_form() -> None:
    assert refusals.describe(revert("NoSuchError", x=1)) == "NoSuchError(...)"
    assert refusals.describe(revert("PurposeNotAllowed")) == "PurposeNotAllowed(...)"
