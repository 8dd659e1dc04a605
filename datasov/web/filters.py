"""Jinja filters the pages share: token amounts, times, sizes, terms badges."""

from __future__ import annotations

from typing import Any

import jinja2

from datasov.cli.refusals import local_time
from datasov.cli.ui import tokens

PURPOSES = {
    "ai_training": "training",
    "ai_generative_training": "generative training",
    "ai_inference": "inference",
    "data_mining": "mining",
}
BADGE = {"allowed": "allowed", "not_allowed": "not allowed", "constrained": "constrained"}


def size(nbytes: Any) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def when(timestamp: Any) -> str:
    return local_time(int(timestamp)) if int(timestamp) else "never"


def duration(seconds: Any) -> str:
    s = int(seconds)
    if s <= 0:
        return "now"
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p) or f"{secs} s"


def install(env: jinja2.Environment) -> None:
    env.filters.update(
        tokens=lambda v: tokens(int(v)), size=size, when=when, duration=duration, badge=lambda v: BADGE.get(v, v)
    )
    env.globals.update(PURPOSES=PURPOSES)
