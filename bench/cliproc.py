"""The ``datasov`` CLI as a user runs it, for benchmarks: a ``devnet up`` process and timed commands.

Everything started here is stopped by its PID (:meth:`Devnet.stop`); nothing else is touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "datasov"]


@dataclass
class Timed:
    seconds: float
    peak_rss_mib: float
    stdout: str
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    stderr: str = ""


def run_timed(
    *args: str,
    timeout: float = 3600,
    env: dict[str, str] | None = None,
    pre: tuple[str, ...] = (),
    cwd: Path | None = None,
) -> Timed:
    """Run ``datasov ARGS`` to its end: its wall time, its own peak RSS and CPU (from ``wait4``).
    ``pre``: interpreter options before ``-m datasov`` (``("-m", "cProfile", "-o", OUT)``); ``cwd``:
    where it runs (``-m`` puts the working directory first on ``sys.path``, before PYTHONPATH)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    # as an installed package runs: from bytecode (written on the first run), not compiled each time
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *pre, "-m", "datasov", *args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
        )
        deadline = t + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise TimeoutError(f"datasov {' '.join(args)} took over {timeout} s")
            time.sleep(0.002)
        seconds = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"datasov {' '.join(args)}: exit {proc.returncode}\n{stderr[-2000:]}")
    return Timed(seconds, usage.ru_maxrss / 1024, stdout, usage.ru_utime, usage.ru_stime, stderr)


class Devnet:
    """``datasov devnet up --json`` on a home of its own, and homes initialised against it."""

    def __init__(
        self,
        home: Path,
        *,
        nodes: int,
        block_time: float = 0.5,
        extra: tuple[str, ...] = (),
        cwd: Path | None = None,
    ) -> None:
        """``cwd``: the code tree the devnet (chain and node processes) runs, as for :func:`run_timed`."""
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        cmd = [*CLI, "devnet", "up", "--home", str(home), "--rpc-port", "0", "--json", "--nodes", str(nodes)]
        cmd += ["--block-time", str(block_time), *extra]
        log = (home / "devnet.log").open("a")  # a file, not a pipe: a chatty devnet never blocks on it
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True, cwd=cwd
        )
        log.close()
        assert self.proc.stdout is not None
        lines = []
        for line in self.proc.stdout:  # the description is printed once everything is up
            lines.append(line)
            if line.rstrip() == "}":
                break
        if not lines or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"devnet did not start; see {home / 'devnet.log'}")
        self.described: dict[str, Any] = json.loads("".join(lines))
        if "error" in self.described:  # `devnet up --json` failed (e.g. a node process did not start in time)
            self.stop()
            raise RuntimeError(f"devnet did not start: {self.described['error']}; see {home / 'devnet.log'}")

    def init_home(self, home: Path, account: int) -> Path:
        net = str(self.home / "devnet.json")
        args = ["init", "--home", str(home), "--network", net, "--dev-account", str(account), "--no-passphrase"]
        run_timed(*args)
        return home

    def stop(self) -> None:
        """SIGTERM to the devnet's PID (it stops its nodes and chain), SIGKILL after 60 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
