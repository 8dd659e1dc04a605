"""A throwaway Tahoe-LAFS grid on loopback for bench.peers: introducer, N storage nodes, one client.

Each node is a ``tahoe run`` process of its own, on ports the kernel picks, speaking the Foolscap
storage protocol (Tahoe 1.20's best case: its HTTPS protocol polls every server once a second).
Tahoe is installed from PyPI, pinned (``tahoe-constraints.txt``), into a venv of its own. Only the
processes started here are stopped, by PID.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONSTRAINTS = HERE / "tahoe-constraints.txt"
VERSION = "1.20.0"


def install(venv: Path) -> Path:
    """``venv/bin/tahoe``, installing the pinned tahoe-lafs there first if it is missing."""
    tahoe = venv / "bin" / "tahoe"
    if not tahoe.exists():
        print(f"# installing tahoe-lafs {VERSION} into {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "-c", str(CONSTRAINTS), f"tahoe-lafs=={VERSION}"]
        subprocess.run(pip, check=True)
    return tahoe


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _set(cfg: Path, section: str, key: str, value: str) -> None:
    """Set ``key = value`` in ``[section]`` of a tahoe.cfg (replacing it if present)."""
    lines = cfg.read_text().splitlines()
    out, inside, done = [], False, False
    for line in lines:
        if line.startswith("["):
            if inside and not done:
                out.append(f"{key} = {value}")
                done = True
            inside = line.strip() == f"[{section}]"
        elif inside and re.match(rf"^#?\s*{re.escape(key)}\s*=", line):
            if not done:
                out.append(f"{key} = {value}")
                done = True
            continue
        out.append(line)
    if inside and not done:
        out.append(f"{key} = {value}")
        done = True
    if not done:
        out += [f"[{section}]", f"{key} = {value}"]
    cfg.write_text("\n".join(out) + "\n")


class Grid:
    def __init__(self, tahoe: Path, work: Path, *, servers: int, k: int, happy: int, n: int) -> None:
        self.tahoe, self.work, self.servers = tahoe, work, servers
        self.procs: list[subprocess.Popen[bytes]] = []
        work.mkdir(parents=True, exist_ok=True)
        ports = free_ports(servers + 2)
        intro, self.web_port = ports[0], ports[1]

        def tcp(port: int) -> list[str]:
            return [f"--port=tcp:{port}:interface=127.0.0.1", f"--location=tcp:127.0.0.1:{port}"]

        self._tahoe("create-introducer", *tcp(intro), str(work / "introducer"))
        self._start("introducer")
        furl_file = work / "introducer" / "private" / "introducer.furl"
        self._wait(lambda: furl_file.exists() and furl_file.stat().st_size > 0, 60, "introducer furl")
        furl = furl_file.read_text().strip()
        creates = [
            subprocess.Popen(
                [
                    *(str(tahoe), "create-node", f"--nickname=storage{i}", f"--introducer={furl}"),
                    *tcp(ports[i + 2]),
                    *("--webport=none", str(work / f"storage{i}")),
                ],
                stdout=subprocess.DEVNULL,
            )
            for i in range(servers)
        ]
        creates.append(
            subprocess.Popen(
                [
                    *(str(tahoe), "create-client", "--nickname=client", f"--introducer={furl}"),
                    f"--webport=tcp:{self.web_port}:interface=127.0.0.1",
                    *(f"--shares-needed={k}", f"--shares-happy={happy}", f"--shares-total={n}", str(work / "client")),
                ],
                stdout=subprocess.DEVNULL,
            )
        )
        if any(p.wait(300) for p in creates):
            raise RuntimeError("tahoe create-node failed")
        client_cfg = work / "client" / "tahoe.cfg"
        for key, value in (("shares.needed", k), ("shares.happy", happy), ("shares.total", n)):
            _set(client_cfg, "client", key, str(value))
        _set(client_cfg, "client", "force_foolscap", "true")
        for i in range(servers):
            _set(work / f"storage{i}" / "tahoe.cfg", "storage", "force_foolscap", "true")
            _set(work / f"storage{i}" / "tahoe.cfg", "client", "force_foolscap", "true")
        for i in range(servers):
            self._start(f"storage{i}")
        self._start("client")
        self._wait(self._all_connected, 300, f"{servers} storage servers connected to the client")

    def _tahoe(self, *args: str) -> str:
        return subprocess.run([str(self.tahoe), *args], check=True, capture_output=True, text=True).stdout

    def _start(self, name: str) -> None:
        log = (self.work / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [str(self.tahoe), "run", "--allow-stdin-close", str(self.work / name)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)

    @staticmethod
    def _wait(cond: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():  # type: ignore[operator]
                return
            time.sleep(0.2)
        raise TimeoutError(f"tahoe grid: no {what} after {timeout:.0f} s")

    def _all_connected(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/?t=json", timeout=5) as r:
                servers = json.load(r)["servers"]
        except OSError:
            return False
        up = sum(1 for s in servers if str(s.get("connection_status", "")).lower().startswith("connected"))
        return up >= self.servers

    def put(self, path: Path) -> str:
        out = self._tahoe("-d", str(self.work / "client"), "put", str(path))
        caps = [line for line in out.splitlines() if line.startswith("URI:")]
        if not caps:
            raise RuntimeError(f"tahoe put gave no cap: {out[-500:]}")
        return caps[-1]

    def get(self, cap: str, path: Path) -> None:
        self._tahoe("-d", str(self.work / "client"), "get", cap, str(path))

    def stop(self) -> None:
        """SIGTERM to every process started here (by PID), SIGKILL to any still there after 20 s."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
