"""``datasov durability``: the yearly loss estimate of a layout."""

from __future__ import annotations

import click

from market.durability import estimate

from .context import (
    json_option,
)
from .ui import emit_json, out_console

# ------------------------------------------------------------------------ durability ----


@click.command()
@click.option("-k", "k", type=int, default=10, show_default=True, help="Shares needed to rebuild.")
@click.option("-n", "n", type=int, default=30, show_default=True, help="Shares stored.")
@click.option("--repair-at", type=int, default=None, help="Repair when this many shares are left (default k + 2).")
@click.option("--node-failure-rate", type=float, default=0.1, show_default=True, help="Failures per node per year.")
@click.option("--repair-hours", type=float, default=24.0, show_default=True, help="Time a repair takes.")
@json_option
def durability(
    k: int, n: int, repair_at: int | None, node_failure_rate: float, repair_hours: float, as_json: bool
) -> None:
    """Estimate the yearly chance of losing a dataset, and the storage expansion factor.

    Model (Storj whitepaper, section 3.4): nodes fail independently (Poisson); repair starts when
    REPAIR_AT shares are left and takes REPAIR_HOURS; data is lost if more than REPAIR_AT - k of
    those fail within one repair. Correlated failures are not modelled (publishing never puts two
    shares on one operator). See market/durability.py.

    \b
    Example:
      datasov durability -k 10 -n 30 --repair-at 12 --node-failure-rate 0.1
    """
    try:
        result = estimate(
            k=k,
            n=n,
            repair_at=repair_at if repair_at is not None else k + 2,
            node_failure_rate=node_failure_rate,
            repair_hours=repair_hours,
        )
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
    if as_json:
        emit_json(result.to_json())
        return
    out_console.print(
        f"{k}-of-{n}, repair at {result.repair_at}, {node_failure_rate:g} failures/node/year, "
        f"repairs take {repair_hours:g} h"
    )
    out_console.print(f"expansion factor      {result.expansion:.2f}x")
    out_console.print(f"repairs per year      {result.repairs_per_year:.3f}")
    out_console.print(f"loss per repair       {result.loss_per_repair:.3e}")
    out_console.print(f"yearly loss           {result.yearly_loss:.3e}  ({result.nines:.1f} nines of durability)")
