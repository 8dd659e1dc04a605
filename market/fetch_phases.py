"""Wall-clock phase marks of one fetch, for :mod:`bench.fetch_profile` (off unless asked for).

With ``DATASOV_FETCH_PHASES=PATH`` in the environment, :func:`mark` appends one JSON line
``{"phase": NAME, "t": time.time()}`` to PATH per call; without it, :func:`mark` does nothing.
Nothing secret is written: phase names only.
"""

from __future__ import annotations

import json
import os
import time

_PATH = os.environ.get("DATASOV_FETCH_PHASES")


def mark(phase: str) -> None:
    """Note that ``phase`` has just ended (no-op unless ``DATASOV_FETCH_PHASES`` is set)."""
    if _PATH:
        with open(_PATH, "a") as f:
            f.write(json.dumps({"phase": phase, "t": time.time()}) + "\n")
