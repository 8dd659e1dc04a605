"""The phases `datasov publish --json` reports: the start-up figure is this process's age."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from datasov.cli.publish import _since_process_start


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_start_up_is_the_age_of_the_process() -> None:
    t = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-c", "from datasov.cli.publish import _since_process_start as s; print(s())"],
        capture_output=True,
        text=True,
        check=True,
    )
    lived = time.monotonic() - t
    young = float(child.stdout)
    # a fresh interpreter's own age (its imports), never more than it lived: not the machine's uptime
    assert 0 <= young <= lived + 0.02  # /proc counts in 10 ms ticks
    old = _since_process_start()
    assert old is not None
    assert old >= 0
