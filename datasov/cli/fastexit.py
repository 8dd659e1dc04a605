"""Leave the interpreter at once after a command that asked for it (``datasov fetch``).

A fetch ends with its output fsynced and moved into place and its report printed; what the
interpreter does after that (module teardown, the garbage collector over every object the chain,
node and crypto libraries made, atexit handlers) is work nobody waits for: measured at 0.2-1.1 s of
a CLI fetch on a loaded machine (docs/fetch.md). A command calls :func:`request` once its work is
done and durable; :func:`main_exit` (the ``datasov`` entry point's, not click's in-process runner's)
then flushes stdout, stderr and logging and calls :func:`os._exit` with the command's exit code.
Commands that did not ask, every in-process caller (``CliRunner``, tests) and a run under a
profiler or tracer (``python -m cProfile``, coverage: they write their results at exit) exit as usual.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

_requested = False


def request() -> None:
    """Ask the entry point to skip interpreter teardown after this command (its work is durable)."""
    global _requested
    _requested = True


def requested() -> bool:
    return _requested


def main_exit(code: int) -> None:
    """If a command asked for it: flush the output streams and logging, then ``os._exit(code)``.
    Returns (does nothing) otherwise."""
    if not _requested or sys.getprofile() is not None or sys.gettrace() is not None:
        return  # a profiler or a coverage tracer writes its results at the usual exit
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said on it
            stream.flush()
    os._exit(code)
