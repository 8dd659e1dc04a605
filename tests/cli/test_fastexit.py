"""``datasov.cli.fastexit``: a command that asked leaves with ``os._exit`` after its output is
flushed; without the ask, or under a profiler, the interpreter exits as usual (atexit runs)."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import atexit, sys
from datasov.cli import fastexit
atexit.register(lambda: print("teardown ran", flush=True))
print("the report", end="")  # not flushed yet: main_exit must flush it
print("on stderr", end="", file=sys.stderr)
if {ask}:
    fastexit.request()
if {profiled}:
    sys.setprofile(lambda *a: None)
fastexit.main_exit(3)
sys.exit(4)
"""


def run(*, ask: bool, profiled: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD.format(ask=ask, profiled=profiled)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_command_that_asked_leaves_at_once_with_its_output_flushed() -> None:
    done = run(ask=True)
    assert done.returncode == 3
    assert done.stdout == "the report"  # flushed, and the atexit handler never ran
    assert done.stderr == "on stderr"


def test_without_the_ask_or_under_a_profiler_the_interpreter_exits_as_usual() -> None:
    for done in (run(ask=False), run(ask=True, profiled=True)):
        assert done.returncode == 4
        assert done.stdout == "the reportteardown ran\n"
