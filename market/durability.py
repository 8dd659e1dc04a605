"""How likely is a k-of-n dataset to be lost in a year, given node failures and lazy repair?

The model (the one in the Storj whitepaper, section 3.4, and Tahoe-LAFS's "repair threshold"):

- each node holding a share fails independently, as a Poisson process with rate ``lam`` per year;
- the repair agent waits until only ``m`` (the repair threshold, k <= m < n) shares are healthy, then
  rebuilds the missing ones within ``repair_time`` (hours); after a repair the dataset has n again;
- the dataset is lost if, during one repair window, more than ``m - k`` of the ``m`` remaining
  shares fail: P(loss per repair) = P[Binomial(m, p) > m - k] with p = 1 - exp(-lam * T);
- repairs happen about once per expected time to drift from n to m healthy shares,
  sum_{i=m+1..n} 1 / (i * lam) years (each step waits for one of the i live shares to fail);
- yearly loss ~= repairs per year * P(loss per repair) (small probabilities; capped at 1).

It ignores correlated failures (a whole data centre or operator going at once); publishing
places no two shares on one operator, but does not yet spread them over distinct networks
(/24 or /48), so two operators in one data centre can still fail together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOURS_PER_YEAR = 24 * 365.25


@dataclass(frozen=True, slots=True)
class Durability:
    k: int
    n: int
    repair_at: int
    node_failure_rate: float  # per node per year
    repair_hours: float
    expansion: float
    loss_per_repair: float
    repairs_per_year: float
    yearly_loss: float
    nines: float

    def to_json(self) -> dict[str, float | int]:
        return {
            "k": self.k,
            "n": self.n,
            "repair_at": self.repair_at,
            "node_failure_rate": self.node_failure_rate,
            "repair_hours": self.repair_hours,
            "expansion": round(self.expansion, 3),
            "loss_per_repair": self.loss_per_repair,
            "repairs_per_year": round(self.repairs_per_year, 4),
            "yearly_loss": self.yearly_loss,
            "nines": round(self.nines, 2),
        }


def _binomial_tail(m: int, p: float, more_than: int) -> float:
    """P[Binomial(m, p) > more_than], summed from the small end for precision."""
    return math.fsum(math.comb(m, j) * p**j * (1 - p) ** (m - j) for j in range(more_than + 1, m + 1))


def estimate(*, k: int, n: int, repair_at: int, node_failure_rate: float, repair_hours: float = 24.0) -> Durability:
    if not 1 <= k <= repair_at < n:
        raise ValueError(f"need 1 <= k <= repair_at < n (got k={k}, repair_at={repair_at}, n={n})")
    if node_failure_rate <= 0 or repair_hours <= 0:
        raise ValueError("node_failure_rate and repair_hours must be positive")
    lam = node_failure_rate
    p = 1 - math.exp(-lam * repair_hours / HOURS_PER_YEAR)
    loss_per_repair = _binomial_tail(repair_at, p, repair_at - k)
    years_between_repairs = sum(1 / (i * lam) for i in range(repair_at + 1, n + 1))
    repairs_per_year = 1 / years_between_repairs
    yearly = min(1.0, repairs_per_year * loss_per_repair)
    nines = -math.log10(yearly) if yearly > 0 else math.inf
    return Durability(
        k, n, repair_at, node_failure_rate, repair_hours, n / k, loss_per_repair, repairs_per_year, yearly, nines
    )
