"""The web app on a test server, logged in or not, over a stub chain (unit tests of the app's own
code: login, CSRF, error pages); the browser tests in tests/e2e drive it over a real network."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from contracts.chain import Chain
from contracts.devchain import dev_account
from datasov.web.app import make_app
from datasov.web.auth import SESSIONS
from datasov.web.state import WebState
from market.directory import StaticDirectory
from market.keystore import Keystore

Connect = Callable[[], Awaitable[Any]]
Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[tuple[Client, str]]]


def web_state(home: Path, connect: Connect) -> WebState:
    keystore = Keystore.create(home, b"test passphrase", account=dev_account(2))
    return WebState(home, keystore, StaticDirectory([]), connect)


@pytest_asyncio.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    """``client, token = await make_client(connect, login=True)``: a client of a fresh app over the
    chain ``connect`` returns (logged in with the login token unless ``login=False``)."""
    clients: list[Client] = []

    async def make(connect: Connect, *, login: bool = True) -> tuple[Client, str]:
        app = make_app(web_state(tmp_path / f"home-{len(clients)}", connect))
        token = app[SESSIONS].login_token
        assert token
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        if login:
            resp = await client.get(f"/network?token={token}", allow_redirects=False)
            assert resp.status == 303
        return client, token

    yield make
    for c in clients:
        await c.close()


def stub_chain(**methods: Any) -> Connect:
    """A connect() giving an object whose async methods are ``methods`` (each a value or an
    exception to raise)."""

    class Stub:
        def __init__(self) -> None:
            self.calls: list[str] = []

    stub = Stub()
    for name, result in methods.items():

        async def method(*_a: Any, _result: Any = result, _name: str = name, **_k: Any) -> Any:
            stub.calls.append(_name)
            if isinstance(_result, BaseException):
                raise _result
            return _result

        setattr(stub, name, method)

    async def connect() -> Any:
        return stub

    connect.stub = stub  # type: ignore[attr-defined]
    return connect


async def unreachable_chain() -> Chain:
    """A real connection attempt to a loopback port nobody listens on."""
    from contracts.models import Deployment

    deployment = Deployment(31337, *["0x" + "11" * 20] * 4, deployed_block=0, epoch_blocks=10, delivery_window=60)
    return await Chain.connect("http://127.0.0.1:9", deployment)


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "page carries no CSRF token"
    return match.group(1)
