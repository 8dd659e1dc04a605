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
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("datasov.devnet")
T = TypeVar("T")
R = TypeVar("R")

PR_SET_PDEATHSIG = 1
START_TIMEOUT = 300.0  # seconds for one child, from its own spawn, to import, start and print its line
# children starting at once (each spends ~2 CPU-s importing): more would only share the cores, so
# that every child of a batch of 30 took nearly the whole batch's CPU time and passed START_TIMEOUT
START_CONCURRENCY = max(2, 2 * (os.cpu_count() or 1))


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
    started = time.perf_counter()
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
        raise NodeProcessError(
            f"datasov {' '.join(args[:2])} took over {within:.0f} s ({log_file}: {_tail_of(log_file, 3)})"
        ) from e
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
    log.debug("datasov %s: %.1f s (%s)", " ".join(args[:2]), time.perf_counter() - started, log_file.parent.name)
    return result


async def node_init(home: Path, *, host: str, capacity: int) -> str:
    """``datasov node init --home H --http HOST:PORT --p2p /ip4/HOST/tcp/PORT2 --capacity N`` (fixed
    free ports, so that ``node join`` announces the URL and libp2p address ``node run`` will have: the
    run has nothing to re-announce, one transaction less per node), unless ``home`` holds a node
    already; the operator address."""
    from storage_node.identity import load_or_create_operator

    from .nodehome import CONFIG_FILE

    if (home / CONFIG_FILE).exists():
        return load_or_create_operator(home).address
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    args = ["node", "init", "--home", str(home), "--http", f"{host}:{free_port(host)}", "--capacity", str(capacity)]
    args += ["--p2p", f"/ip4/{host}/tcp/{free_port(host)}"]
    return str((await run_cli(*args, log_file=home / "node.log"))["operator"])


async def node_join(home: Path, rpc: str, deployment: Path, *, stake: str | None = None) -> dict[str, Any]:
    """``datasov node join --home H --rpc URL --deployment F [--stake TOKENS]``: what an outside
    operator runs to stake and announce; its JSON result (operator, staked, stake, announced, url)."""
    args = ["node", "join", "--home", str(home), "--rpc", rpc, "--deployment", str(deployment)]
    return await run_cli(*args, *(["--stake", stake] if stake is not None else []), log_file=home / "node.log")


def make_node_home(home: Path, *, host: str, capacity: int) -> str:
    """What :func:`node_init` has its child do, in this process (``devnet up``: the child's imports
    were ~2 CPU-s of a node's ~5; its keys and ``node.json`` are the same), unless ``home`` holds a
    node already; the operator address."""
    from storage_node.identity import load_or_create_operator
    from storage_node.p2p.identity import load_or_create_p2p_key

    from .nodehome import CONFIG_FILE, NodeHome

    operator = load_or_create_operator(home).address  # creates home and the key (0600)
    if not (home / CONFIG_FILE).exists():
        load_or_create_p2p_key(home)
        NodeHome(host, free_port(host), capacity, p2p=f"/ip4/{host}/tcp/{free_port(host)}").save(home)
    return operator


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
        cmd += ["--rpc", rpc, "--deployment", str(deployment), "--p2p", self.p2p_listen()]
        for addr in bootstrap:
            cmd += ["--bootstrap", addr]
        return cmd + list(extra)

    def p2p_listen(self) -> str:
        """The libp2p address of the home's node.json (what ``node join`` announced), else any port."""
        from .nodehome import NodeHome, NodeHomeError

        try:
            configured = NodeHome.load(self.home).p2p
        except (NodeHomeError, OSError):
            configured = None
        return configured or f"/ip4/{self.host}/tcp/0"

    async def start(
        self, rpc: str, deployment: Path, *, bootstrap: Sequence[str] = (), extra: Sequence[str] = ()
    ) -> None:
        """Spawn the child and wait for its line, at most :data:`START_TIMEOUT` from the spawn
        (:class:`NodeProcessError` naming the node, what it was doing and its log's tail if it
        exits first or is late)."""
        started = time.perf_counter()
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
            late = isinstance(err, TimeoutError)
            pid = self.proc.pid
            await self.stop()
            how = f"printed nothing within {START_TIMEOUT:.0f} s" if late else f"exited ({self.proc.returncode})"
            raise NodeProcessError(
                f"node {self.index} ({self.host}, pid {pid}) did not start: `node run` {how}; "
                f"{self.log_file}: {self._tail()}"
            ) from err
        self.address, self.url = str(info["address"]), str(info["url"])
        self.peer_id = str(info.get("peer_id") or "")
        self.multiaddrs = [str(a) for a in info.get("multiaddrs") or []]
        log.info(
            "node %d (pid %d) %s at %s, up in %.1f s",
            self.index,
            self.proc.pid,
            self.address,
            self.url,
            time.perf_counter() - started,
        )

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


async def bounded(
    items: Sequence[T], work: Callable[[T], Awaitable[R]], *, limit: int = START_CONCURRENCY
) -> list[R | BaseException]:
    """``work(item)`` for every item, at most ``limit`` at once, in order; each result or exception."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(i) for i in items), return_exceptions=True))


def first_failure(results: Sequence[object]) -> BaseException | None:
    """The first exception among ``results`` (a cancellation before the others)."""
    failures = [r for r in results if isinstance(r, BaseException)]
    cancelled = [r for r in failures if not isinstance(r, Exception)]
    return next(iter(cancelled or failures), None)


async def start_all(
    nodes: Sequence[NodeProcess], rpc: str, deployment: Path, *, extra: Sequence[str] = ()
) -> list[str]:
    """Start the first node, then the rest bootstrapping to it, :data:`START_CONCURRENCY` at once;
    the bootstrap addresses. If one does not start, all are stopped and its error raised."""
    if not nodes:
        return []
    await nodes[0].start(rpc, deployment, extra=extra)
    bootstrap = nodes[0].multiaddrs

    async def start(n: NodeProcess) -> None:
        await n.start(rpc, deployment, bootstrap=bootstrap, extra=extra)

    failure = first_failure(await bounded(nodes[1:], start))
    if failure is not None:
        await stop_all(nodes)
        raise failure
    return bootstrap


async def stop_all(nodes: Sequence[NodeProcess], grace: float = 10.0) -> None:
    await asyncio.gather(*(n.stop(grace) for n in nodes))
