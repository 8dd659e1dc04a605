"""`datasov devnet up --json` as a child process of a test: started, described, and always stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


def start_devnet(home: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start `datasov devnet up --json` and return it with its description, once everything is up."""
    cmd = [sys.executable, "-m", "datasov", "devnet", "up", "--home", str(home), "--rpc-port", "0", "--json"]
    cmd += ["--block-time", "0.2", *extra]
    log = (home / "devnet.log").open("a")  # a file, not a pipe: a chatty devnet can never block on it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    log.close()
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:  # the description is printed as soon as everything is up
            lines.append(line)
            if line.rstrip() == "}":
                break
        return proc, json.loads("".join(lines))
    except BaseException:  # a start that failed or timed out (pytest-timeout) must not leave it running
        stop_devnet(proc, check=False)
        raise


def stop_devnet(proc: subprocess.Popen[str], *, check: bool = True) -> None:
    """SIGTERM (the devnet stops its node processes), then SIGKILL if it has not ended within 60 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0 or not check
