"""cProfile one storage node process of a benchmark's devnet, for a window the benchmark chooses.

:func:`install` writes a ``sitecustomize`` into a folder the caller puts first on ``PYTHONPATH``
of the devnet (the node processes inherit it). In a ``datasov node run`` process it installs two
signal handlers: ``SIGUSR1`` starts cProfile (the event loop's thread: the worker threads that
write and hash are not in it), ``SIGUSR2`` stops it and writes ``<out>/node-<pid>.prof``.
Every other process ignores it. Nothing here runs unless a benchmark asks for it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

HOOK = """
import os
def _datasov_node_profile():
    try:
        with open("/proc/self/cmdline", "rb") as f:
            argv = f.read().split(b"\\0")
    except OSError:
        return
    if b"node" not in argv or b"run" not in argv:
        return
    import cProfile, signal
    out = os.environ["DATASOV_NODE_PROFILE"]
    prof = cProfile.Profile()
    def start(signum, frame):
        prof.enable()
    def stop(signum, frame):
        prof.disable()
        prof.dump_stats(os.path.join(out, "node-%d.prof" % os.getpid()))
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
if os.environ.get("DATASOV_NODE_PROFILE"):
    _datasov_node_profile()
"""


def install(folder: Path, out: Path) -> dict[str, str]:
    """Write the hook into ``folder``; the environment variables that turn it on for ``out``."""
    folder.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(HOOK)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "DATASOV_NODE_PROFILE": str(out)}


def start(pid: int) -> None:
    os.kill(pid, signal.SIGUSR1)


def stop(pid: int, out: Path, timeout: float = 30.0) -> Path | None:
    """Stop profiling ``pid``; the profile's path once written (None if it never came)."""
    os.kill(pid, signal.SIGUSR2)
    path = out / f"node-{pid}.prof"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size > 0:
            time.sleep(0.2)  # dump_stats writes in one go; let it finish
            return path
        time.sleep(0.1)
    return None
