"""Login with the one-time token, the session cookie, CSRF on every state-changing request."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from datasov.web.server import is_loopback

from .conftest import MakeClient, csrf_of, stub_chain

NETWORK = {"dataset_count": 0}


async def test_a_page_without_login_is_refused_with_what_to_do(make_client: MakeClient) -> None:
    client, _ = await make_client(stub_chain(), login=False)
    resp = await client.get("/")
    assert resp.status == 401
    assert "open the URL that `datasov ui` printed" in await resp.text()
    assert (await client.get("/static/style.css")).status == 200  # no secret there


async def test_the_login_token_becomes_a_strict_httponly_cookie_and_works_once(make_client: MakeClient) -> None:
    connect = stub_chain(dataset_count=0)
    client, token = await make_client(connect, login=False)
    resp = await client.get(f"/?token={token}", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert token not in cookie
    assert (await client.get("/")).status == 200
    other = TestClient(TestServer(client.app))  # another browser with the same link, after it was used
    await other.start_server()
    try:
        again = await other.get(f"/?token={token}")
        assert again.status == 401
        assert "used already" in await again.text()
        assert (await other.get("/?token=wrong")).status == 401
    finally:
        await other.close()


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(make_client: MakeClient) -> None:
    connect = stub_chain(refund=None, dataset_count=0)
    client, _ = await make_client(connect)
    for data in ({}, {"csrf": "forged"}):
        resp = await client.post("/licenses/1/refund", data=data, allow_redirects=False)
        assert resp.status == 403
        assert "CSRF" in await resp.text()
    resp = await client.post("/licenses/1/refund", headers={"X-CSRF-Token": "forged"}, allow_redirects=False)
    assert resp.status == 403
    assert connect.stub.calls == []  # type: ignore[attr-defined]


async def test_a_post_with_the_pages_csrf_token_goes_through(make_client: MakeClient) -> None:
    connect = stub_chain(refund=None, dataset_count=0)
    client, _ = await make_client(connect)
    csrf = csrf_of(await (await client.get("/")).text())
    resp = await client.post("/licenses/1/refund", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert "refund" in connect.stub.calls  # type: ignore[attr-defined]
    resp = await client.post("/licenses/1/refund", headers={"X-CSRF-Token": csrf}, allow_redirects=False)
    assert resp.status == 303


async def test_a_session_cookie_from_elsewhere_is_no_session(make_client: MakeClient) -> None:
    client, _ = await make_client(stub_chain(dataset_count=0), login=False)
    resp = await client.get("/", cookies={"datasov_session": "made-up"})
    assert resp.status == 401


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.5.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.4")
    assert not is_loopback("example.org")


async def test_pages_forbid_framing_and_foreign_scripts_and_are_not_cached(make_client: MakeClient) -> None:
    client, _ = await make_client(stub_chain(dataset_count=0))
    resp = await client.get("/")
    assert resp.status == 200
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
