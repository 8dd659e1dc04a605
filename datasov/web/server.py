"""Run the web app on an address: ``start`` returns the runner and the login URL to print.

Loopback only unless asked: :func:`is_loopback` tells ``datasov ui`` when to warn that the app,
which holds the keystore, would be reachable from other machines.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp import web

from .app import make_app
from .auth import SESSIONS
from .state import WebState


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def start(state: WebState, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Serve the app; returns its runner (``await runner.cleanup()`` stops it) and the one-time
    login URL (``http://HOST:PORT/?token=...``)."""
    app = make_app(state)
    runner = web.AppRunner(app, access_log=None)  # the login URL carries the token: never log requests
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    sockets: list[socket.socket] = list(getattr(site._server, "sockets", None) or [])
    if sockets:
        bound = int(sockets[0].getsockname()[1])
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{bound}/?token={app[SESSIONS].login_token}"
