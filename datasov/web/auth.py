"""Who may use the web app: a one-time login token, a session cookie, a CSRF token per session.

    datasov ui prints   http://127.0.0.1:PORT/?token=LOGIN   (the login token, usable once)
    GET /?token=LOGIN   -> 303 to /, Set-Cookie: datasov_session=SID; HttpOnly; SameSite=Strict
    every other page    needs that cookie (else 401: "open the URL printed on the console")
    every POST          also needs the session's CSRF token, as the form field ``csrf`` or the
                        ``X-CSRF-Token`` header (else 403), so another site cannot drive the app
                        even though the browser would send the cookie along with its request

The tokens are 256-bit random values compared in constant time; nothing about them is logged.
Static files (CSS and the small script) carry no secrets and are served without a session.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from .render import CSRF

SESSION_COOKIE = "datasov_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
PUBLIC_PREFIXES = ("/static/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NotLoggedIn(web.HTTPUnauthorized):
    """No valid session cookie (and no valid login token)."""


class CsrfRefused(web.HTTPForbidden):
    """A state-changing request without its session's CSRF token."""


@dataclass
class Sessions:
    """The login token (until it is used) and the sessions it opened: session id -> CSRF token."""

    login_token: str | None = field(default_factory=lambda: secrets.token_urlsafe(32))
    _csrf: dict[str, str] = field(default_factory=dict)

    def exchange(self, token: str) -> str | None:
        """A new session id for the login token, which then stops working; None if it is wrong or used."""
        if self.login_token is None or not hmac.compare_digest(token.encode(), self.login_token.encode()):
            return None
        self.login_token = None
        session = secrets.token_urlsafe(32)
        self._csrf[session] = secrets.token_urlsafe(32)
        return session

    def csrf_of(self, session: str | None) -> str | None:
        if not session:
            return None
        for sid, csrf in self._csrf.items():
            if hmac.compare_digest(sid.encode(), session.encode()):
                return csrf
        return None


SESSIONS = web.AppKey("sessions", Sessions)


@web.middleware
async def require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Exchange ``?token=`` for a session cookie; refuse requests without a session or CSRF token."""
    if request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    sessions = request.app[SESSIONS]
    token = request.query.get("token")
    if token is not None and request.method == "GET":
        session = sessions.exchange(token)
        if session is None:
            raise NotLoggedIn(text="this login link was used already or is wrong: restart `datasov ui` for a new one")
        response = web.HTTPSeeOther(
            request.rel_url.with_query({k: v for k, v in request.query.items() if k != "token"})
        )
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="Strict", path="/")
        raise response
    csrf = sessions.csrf_of(request.cookies.get(SESSION_COOKIE))
    if csrf is None:
        raise NotLoggedIn(text="not logged in: open the URL that `datasov ui` printed on its console (?token=...)")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sent = str((await request.post()).get(CSRF_FIELD, ""))
        if not sent or not hmac.compare_digest(sent.encode(), csrf.encode()):
            raise CsrfRefused(text="refused: this request carries no valid CSRF token (reload the page and retry)")
    request[CSRF] = csrf
    return await handler(request)
