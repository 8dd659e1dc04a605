"""``datasov ui`` as a user runs it: it serves while the chain is down (and says so on its pages),
logs in with the printed link once, stops cleanly on SIGTERM, and refuses bad options clearly."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from contracts.models import Deployment

from .conftest import datasov

DOWN = "http://127.0.0.1:9"  # nothing listens there


def home_on_a_chain_that_is_down(tmp_path: Path) -> Path:
    deployment = Deployment(31337, *["0x" + "11" * 20] * 4, deployed_block=0, epoch_blocks=10, delivery_window=60)
    network = tmp_path / "devnet.json"
    network.write_text(json.dumps({"version": 1, "rpc": DOWN, "deployment": deployment.to_json(), "nodes": []}))
    home = tmp_path / "lab"
    datasov("init", "--network", str(network), "--dev-account", "2", "--no-passphrase", home=home)
    return home


@pytest.mark.slow
async def test_ui_serves_logs_in_once_and_stops_on_sigterm(tmp_path: Path) -> None:
    home = home_on_a_chain_that_is_down(tmp_path)
    cmd = [sys.executable, "-m", "datasov", "ui", "--home", str(home), "--listen", "127.0.0.1:0", "--json"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        started = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        url = started["url"]
        assert url.startswith("http://127.0.0.1:")
        assert "?token=" in url
        base = url.split("?", 1)[0]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(base) as resp:
                assert resp.status == 401
            async with browser.get(url) as resp:  # the link: a session cookie, then the market page
                assert resp.status == 503
                assert "The chain cannot be reached" in await resp.text()
            async with browser.get(base + "node") as resp:
                assert resp.status == 200
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other,
            other.get(url) as resp,
        ):
            assert resp.status == 401  # the link works once
    finally:
        proc.send_signal(signal.SIGTERM)
        _, raw = await asyncio.wait_for(proc.communicate(), 30)
    err = raw.decode()
    assert proc.returncode == 0, err
    assert "token" not in err  # the login token is never logged


def test_ui_refuses_a_bad_listen_address_as_a_usage_error(tmp_path: Path) -> None:
    proc = datasov("ui", "--listen", "nowhere", home=tmp_path / "x", check=False)
    assert proc.returncode == 2
    assert "is not HOST:PORT" in proc.stderr
