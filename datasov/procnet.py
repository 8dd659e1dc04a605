"""Storage nodes as OS processes: one ``datasov node run`` child per node, each on its own 127.0.x.1.

This is how ``datasov devnet up``, the CLI tests and the Hardhat integration test run nodes, so that
a "killed node" there is a real ``kill -9`` (:meth:`NodeProcess.kill`). The in-process
:class:`datasov.devnet.LocalNetwork` stays for the unit and flow tests.

A node comes to be the way an outside operator's does: ``datasov node init`` (:func:`node_init`),
``datasov node join`` (:func:`node_join`: stake and announce), then ``datasov node run``, each a
child process. Each node's child runs ``python -m datasov node run --home H --rpc URL --deployment F --p2p
/ip4/127.0.x.1/tcp/0 [--bootstrap ...] --json``; its first stdout line (JSON: operator address,
URL, peer id, multiaddrs) says it is up; its log goes to ``H/node.log``. No orphans: a child is
started with ``PR_SET_PDEATHSIG`` = SIGTERM (Linux), so it stops when the process that started it
dies, even by ``kill -9``; :meth:`NodeProcess.stop` sends SIGTERM, then SIGKILL after ``grace``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("datasov.devnet")

PR_SET_PDEATHSIG = 1
START_TIMEOUT = 300.0  # seconds for a child to import, start and print its line (2 busy cores)


class NodeProcessError(RuntimeError):
    """A node process did not start (its log's tail is in the message)."""


def node_host(index: int) -> str:
    """The loopback address of node ``index`` (0-based): 127.0.1.1, 127.0.2.1, ... (distinct /24s)."""
    if not 0 <= index < 254:
        raise ValueError("at most 254 nodes, one per 127.0.x.1")
    return f"127.0.{index + 1}.1"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def free_port(host: str) -> int:
    """A TCP port free on ``host`` now (the node binds it a moment later; loopback, so nobody races us)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def run_cli(*args: str, log_file: Path, within: float = START_TIMEOUT) -> dict[str, Any]:
    """``python -m datasov ARGS --json`` as a child (stderr appended to ``log_file``); its JSON
    output. :class:`NodeProcessError` with the error it printed if it fails or is late."""
    with log_file.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "datasov",
            *args,
            "--json",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            preexec_fn=_die_with_parent,
        )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError as e:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise NodeProcessError(f"datasov {' '.join(args[:2])} took over {within:.0f} s") from e
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        said = text.strip() or _tail_of(log_file)
        with contextlib.suppress(ValueError, TypeError, KeyError):
            said = str(json.loads(text)["error"]["message"])
        raise NodeProcessError(f"datasov {' '.join(args[:2])} failed (exit {proc.returncode}): {said}")
    try:
        result: dict[str, Any] = json.loads(text)
    except ValueError as e:
        raise NodeProcessError(f"datasov {' '.join(args[:2])} printed no JSON: {text[:200]!r}") from e
    return result


async def node_init(home: Path, *, host: str, capacity: int) -> str:
    """``datasov node init --home H --http HOST:PORT --capacity N`` (a fixed free port, so that
    ``node join`` has a URL to announce), unless ``home`` holds a node already; the operator address."""
    from storage_node.identity import load_or_create_operator

    from .nodehome import CONFIG_FILE

    if (home / CONFIG_FILE).exists():
        return load_or_create_operator(home).address
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    args = ["node", "init", "--home", str(home), "--http", f"{host}:{free_port(host)}", "--capacity", str(capacity)]
    return str((await run_cli(*args, log_file=home / "node.log"))["operator"])


async def node_join(home: Path, rpc: str, deployment: Path, *, stake: str | None = None) -> dict[str, Any]:
    """``datasov node join --home H --rpc URL --deployment F [--stake TOKENS]``: what an outside
    operator runs to stake and announce; its JSON result (operator, staked, stake, announced, url)."""
    args = ["node", "join", "--home", str(home), "--rpc", rpc, "--deployment", str(deployment)]
    return await run_cli(*args, *(["--stake", stake] if stake is not None else []), log_file=home / "node.log")


def _tail_of(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class NodeProcess:
    index: int
    home: Path
    host: str
    proc: asyncio.subprocess.Process | None = None
    operator: str = ""  # from `node init`; ``address`` is what the running node says it is
    address: str = ""
    url: str = ""
    peer_id: str = ""
    multiaddrs: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def log_file(self) -> Path:
        return self.home / "node.log"

    def command(self, rpc: str, deployment: Path, bootstrap: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
        cmd = [sys.executable, "-m", "datasov", "node", "run", "--home", str(self.home), "--json"]
        cmd += ["--rpc", rpc, "--deployment", str(deployment), "--p2p", f"/ip4/{self.host}/tcp/0"]
        for addr in bootstrap:
            cmd += ["--bootstrap", addr]
        return cmd + list(extra)

    async def start(
        self, rpc: str, deployment: Path, *, bootstrap: Sequence[str] = (), extra: Sequence[str] = ()
    ) -> None:
        """Spawn the child and wait for its line (:class:`NodeProcessError` if it exits first or is late)."""
        with self.log_file.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command(rpc, deployment, bootstrap, extra),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                preexec_fn=_die_with_parent,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), START_TIMEOUT)
            info: dict[str, Any] = json.loads(line)
        except (TimeoutError, ValueError) as err:
            await self.stop()
            raise NodeProcessError(f"node {self.index} did not start: {self._tail()}") from err
        self.address, self.url = str(info["address"]), str(info["url"])
        self.peer_id = str(info.get("peer_id") or "")
        self.multiaddrs = [str(a) for a in info.get("multiaddrs") or []]
        log.info("node %d (pid %d) %s at %s", self.index, self.proc.pid, self.address, self.url)

    def _tail(self, lines: int = 8) -> str:
        return _tail_of(self.log_file, lines)

    def kill(self) -> None:
        """``kill -9``: the node stops at once, mid-whatever (its files stay)."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; waits for the child to end."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        if self.proc.stdout is not None:
            with contextlib.suppress(Exception):
                await self.proc.stdout.read()


async def start_all(
    nodes: Sequence[NodeProcess], rpc: str, deployment: Path, *, extra: Sequence[str] = ()
) -> list[str]:
    """Start the first node, then the rest at once, bootstrapping to the first; the bootstrap addresses."""
    if not nodes:
        return []
    await nodes[0].start(rpc, deployment, extra=extra)
    bootstrap = nodes[0].multiaddrs
    results = await asyncio.gather(
        *(n.start(rpc, deployment, bootstrap=bootstrap, extra=extra) for n in nodes[1:]), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await stop_all(nodes)
        raise failures[0]
    return bootstrap


async def stop_all(nodes: Sequence[NodeProcess], grace: float = 10.0) -> None:
    await asyncio.gather(*(n.stop(grace) for n in nodes))
