"""Rendering a page: the view's values plus what every page shows (account, CSRF token, path)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .state import STATE

CSRF = web.RequestKey("csrf", str)
"""The CSRF token of the request's session (set by :func:`datasov.web.auth.require_login`)."""


def base(request: web.Request) -> dict[str, Any]:
    state = request.app[STATE]
    return {
        "csrf": request.get(CSRF, ""),
        "address": state.address,
        "path": request.path,
        "has_node": state.node is not None,
    }


def render(request: web.Request, template: str, values: dict[str, Any], *, status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, {**base(request), **values}, status=status)


View = Callable[[web.Request], Awaitable[dict[str, Any]]]


def page(template: str) -> Callable[[View], Callable[[web.Request], Awaitable[web.Response]]]:
    """Decorate a view returning its template's values."""

    def wrap(view: View) -> Callable[[web.Request], Awaitable[web.Response]]:
        @functools.wraps(view)
        async def handler(request: web.Request) -> web.Response:
            return render(request, template, await view(request))

        return handler

    return wrap
