"""Start and stop a real Hardhat JSON-RPC node on a free loopback port, for integration tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
READY = "Started HTTP and WebSocket JSON-RPC server"


class HardhatUnavailable(RuntimeError):
    """npx or contracts/node_modules is missing."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HardhatNode:
    def __init__(self, timeout: float = 90.0) -> None:
        if shutil.which("npx") is None or not (CONTRACTS / "node_modules" / "hardhat").is_dir():
            raise HardhatUnavailable("run `npm ci --prefix contracts` (make test does)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "CI": "true"}
        self.proc = subprocess.Popen(
            ["npx", "--no-install", "hardhat", "node", "--hostname", "127.0.0.1", "--port", str(self.port)],
            cwd=CONTRACTS,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # npx runs node as a child: stop the whole group
        )
        ready = threading.Event()
        self.output: list[str] = []

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                if READY in line:
                    ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not ready.wait(timeout):
            self.stop()
            raise HardhatUnavailable("hardhat node did not start:\n" + "".join(self.output[-20:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # the pump thread owns stdout: it reads to EOF once the process is gone (closing the pipe
        # here while it reads would block on the reader's lock)
        self._pump.join(10)
        if not self._pump.is_alive() and self.proc.stdout is not None:
            self.proc.stdout.close()
