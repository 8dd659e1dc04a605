"""The durability model: exact small cases, and the directions it must move in."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.durability import HOURS_PER_YEAR, estimate


def test_small_case_by_hand() -> None:
    # 1-of-2, repair at 1: lost if the last share's node fails during the 24 h repair
    d = estimate(k=1, n=2, repair_at=1, node_failure_rate=1.0, repair_hours=24)
    p = 1 - math.exp(-24 / HOURS_PER_YEAR)
    assert d.loss_per_repair == pytest.approx(p)
    assert d.repairs_per_year == pytest.approx(2.0)  # one of 2 live shares fails: rate 2 lam
    assert d.yearly_loss == pytest.approx(2 * p)
    assert d.expansion == 2


@given(
    k=st.integers(1, 12),
    extra=st.integers(1, 20),
    margin=st.integers(0, 4),
    rate=st.floats(0.01, 2.0),
)
def test_more_margin_or_reliability_never_hurts(k: int, extra: int, margin: int, rate: float) -> None:
    n = k + extra
    repair_at = min(k + margin, n - 1)
    base = estimate(k=k, n=n, repair_at=repair_at, node_failure_rate=rate)
    assert 0 <= base.yearly_loss <= 1
    worse_nodes = estimate(k=k, n=n, repair_at=repair_at, node_failure_rate=rate * 2)
    assert worse_nodes.yearly_loss >= base.yearly_loss
    slower = estimate(k=k, n=n, repair_at=repair_at, node_failure_rate=rate, repair_hours=48)
    assert slower.loss_per_repair >= base.loss_per_repair
    if repair_at + 1 < n:
        eager = estimate(k=k, n=n, repair_at=repair_at + 1, node_failure_rate=rate)
        assert eager.loss_per_repair <= base.loss_per_repair


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="repair_at"):
        estimate(k=10, n=30, repair_at=30, node_failure_rate=0.1)
    with pytest.raises(ValueError, match="repair_at"):
        estimate(k=10, n=30, repair_at=9, node_failure_rate=0.1)
    with pytest.raises(ValueError, match="positive"):
        estimate(k=10, n=30, repair_at=12, node_failure_rate=0)
