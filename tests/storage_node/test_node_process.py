"""A node as a real process (`datasov node run`): kill -9 mid-upload, restart, nothing lost or half-visible."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from erasure import merkle
from storage_node.client import NodeClient, NodeUnavailable, RemoteError
from storage_node.orders import StorageOrder

from .conftest import publisher

pytestmark = pytest.mark.asyncio(loop_scope="function")
DS = "ef" * 32


async def run_node(home: Path, port: int) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datasov",
        "node",
        "run",
        "--home",
        str(home),
        "--http",
        f"127.0.0.1:{port}",
        "--dev-accept-any-order",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    assert "listening on" in line, line
    return proc, line.rsplit(" ", 1)[1].strip()


async def init_node(home: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datasov",
        "node",
        "init",
        "--home",
        str(home),
        "--capacity",
        "1GiB",
        "--json",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert os.stat(home / "operator.key").st_mode & 0o777 == 0o600
    return str(json.loads(out)["operator"])


async def test_kill_9_mid_upload_then_restart(tmp_path: Path) -> None:
    from tests.support.hardhat import free_port

    home = tmp_path / "node"
    address = await init_node(home)
    port = free_port()
    proc, url = await run_node(home, port)
    data = os.urandom(24 << 20)
    owner = publisher()

    def new_order() -> StorageOrder:  # each upload needs a fresh nonce
        return StorageOrder.new(
            node=address,
            dataset=DS,
            index=0,
            share_root=merkle.root(data, 1024),
            size=len(data),
            leaf_size=1024,
            block_size=256 * 1024,
        )

    order = new_order()
    half_sent = asyncio.Event()

    async def body():  # type: ignore[no-untyped-def]
        for i in range(0, len(data) // 2, 1 << 20):
            yield data[i : i + (1 << 20)]
        half_sent.set()
        await asyncio.sleep(3600)  # never finishes: the node dies first

    async with NodeClient(timeout=10, retries=1) as client:
        upload = asyncio.create_task(client.put_share(url, order, owner, body()))
        await half_sent.wait()
        # 12 MiB went out: more than socket buffers hold, so the node is writing the part file
        assert list((home / "tmp").glob("*.part"))
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        with pytest.raises((NodeUnavailable, RemoteError)):
            await upload

        proc, url = await run_node(home, port)  # restart on the same home
        try:
            assert not list((home / "tmp").iterdir())  # partial upload cleaned up
            with pytest.raises(RemoteError) as info:
                await client.get_share(url, DS, 0)
            assert info.value.status == 404
            await client.put_share(url, new_order(), owner, data)
            proc.send_signal(signal.SIGKILL)  # a committed share survives kill -9
            await proc.wait()
            proc, url = await run_node(home, port)
            assert await client.get_share(url, DS, 0) == data
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0  # clean stop on SIGTERM


async def test_run_without_a_chain_needs_the_explicit_development_flag(tmp_path: Path) -> None:
    home = tmp_path / "node"
    await init_node(home)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "datasov",
        "node",
        "run",
        "--home",
        str(home),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2  # a usage error, before anything listens
    assert b"--dev-accept-any-order" in err
    assert b"listening" not in out
