"""The web app: server-rendered pages over the market and chain APIs, one aiohttp application.

    /                  Market: datasets on offer, filtered by purpose, price and size
    /datasets/ID       one dataset: terms in full, commitment, holders' health; Buy (with a confirm step)
    /licenses          the lab's licenses: state, key, expiry, consent; fetch (progress), receipt, refund
    /mine              the owner's datasets: sales, earnings, keys pending; revoke, end storage, publish
    /node              the operator's node: shares, disk, proofs per epoch (chart), earnings, claim+withdraw
    /network           the nodes this client knows, and whether they answer
    /jobs/ID           a background job's progress (JSON, polled by the page)

Middlewares, outermost first: error pages (:mod:`.errors`), then login and CSRF (:mod:`.auth`).
Pages never receive a private key: every signature is made here, with the keystore of the home.
"""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import auth, filters, views_lab, views_market, views_node, views_owner
from .auth import Handler
from .errors import problem
from .render import render
from .state import STATE, WebState

log = logging.getLogger("datasov.web")
HERE = Path(__file__).parent
MAX_BODY = 1 << 20  # forms only: nothing big is ever uploaded through the app


def _error_page(
    request: web.Request, status: int, title: str, message: str, hint: str = "", name: str = ""
) -> web.Response:
    return render(
        request, "error.html", {"title": title, "message": message, "hint": hint, "name": name}, status=status
    )


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as err:
        if err.status < 400 or request.path.startswith("/jobs/"):
            raise
        return _error_page(request, err.status, err.reason, err.text or "", name=type(err).__name__)
    except Exception as err:
        found = problem(err)
        if found is None:
            log.exception("unexpected error on %s %s", request.method, request.path)
            return _error_page(
                request, 500, "Unexpected error", f"{type(err).__name__}: {err}", "This is a bug; the log has details."
            )
        return _error_page(request, found.status, found.title, found.message, found.hint, found.name)


async def job_status(request: web.Request) -> web.Response:
    job = request.app[STATE].jobs.get(int(request.match_info["job_id"]))
    if job is None:
        raise web.HTTPNotFound(text="no such job")
    return web.json_response(job.to_json())


SECURITY_HEADERS = {
    # scripts, styles and images from the app only (no inline script, no CDN); never inside a frame
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the login link never leaves in a Referer header
}


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"  # pages show balances and licenses: not for the disk cache


def make_app(state: WebState) -> web.Application:
    app = web.Application(middlewares=[error_pages, auth.require_login], client_max_size=MAX_BODY)
    app[STATE] = state
    app[auth.SESSIONS] = auth.Sessions()
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    filters.install(env)
    app.router.add_static("/static/", HERE / "static")
    app.router.add_get(r"/jobs/{job_id:\d+}", job_status)
    for views in (views_market, views_lab, views_owner, views_node):
        views.add_routes(app.router)

    async def closing(_app: web.Application) -> None:
        await state.close()

    app.on_cleanup.append(closing)
    app.on_response_prepare.append(_secure_headers)
    return app
