"""Title look-ups: a dataset whose holders do not answer is not asked again on every listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from datasov.cli import titles
from market import buyer
from market.errors import MarketError


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    asked: list[int] = []

    async def holders(chain: Any, directory: Any, dataset_id: int) -> Any:
        asked.append(dataset_id)
        raise MarketError(f"no holder of dataset {dataset_id} answers")

    monkeypatch.setattr(buyer, "holders", holders)
    monkeypatch.setattr(titles, "_misses", {})
    return asked


async def test_a_dataset_without_an_answering_holder_is_not_asked_again_until_its_miss_expires(
    tmp_path: Path, unreachable: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(titles, "_clock", clock)
    manifests = {1: b"\x01" * 32, 2: b"\x02" * 32}
    titles.remember(tmp_path, manifests[2], "known")

    first = await titles.titles(None, None, tmp_path, manifests)  # type: ignore[arg-type]
    assert first == {1: None, 2: "known"}
    assert unreachable == [1]

    clock.now += titles.RETRY_AFTER - 1
    assert await titles.titles(None, None, tmp_path, manifests) == first  # type: ignore[arg-type]
    assert unreachable == [1], "a recent miss is not asked again"

    clock.now += 2
    await titles.titles(None, None, tmp_path, manifests)  # type: ignore[arg-type]
    assert unreachable == [1, 1], "an expired miss is asked again"
