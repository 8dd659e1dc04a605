"""The owner's page: datasets owned, sales and earnings, keys pending; revoke consent, end storage,
withdraw; publish a folder of this machine with terms, price and k/n (a job with a progress bar).

Revoking and ending storage are irreversible, so each has a confirmation page (``GET``) saying what
it does to the licenses already sold, and only its ``POST`` acts (as ``datasov consent revoke``
and ``datasov storage end`` do, with the same words).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from contracts.chain import Chain
from contracts.models import LicenseStatus
from contracts.terms import LicenseTerms, Permission
from datasov.cli import queries, titles
from datasov.cli.earnings import _balance
from datasov.cli.effects import Effects, end_effects, revoke_effects
from erasure.errors import ErasureError
from erasure.pipeline import Layout
from market import key_agent, publisher
from storage_node.client import NodeClient

from .errors import explain
from .jobs import Job
from .render import page
from .state import STATE, WebState
from .views_market import Cursor, listing, parse_tokens

routes = web.RouteTableDef()
PERMISSIONS = [p.name.lower() for p in Permission]


def agent_decisions(home: Path) -> list[dict[str, Any]]:
    """The key agent's recorded decisions, newest first, if its state file keeps any (a seam: the
    agent keeps them in memory today, so this is empty until it records them)."""
    try:
        state = json.loads((home / key_agent.STATE_FILE).read_text())
    except (OSError, ValueError):
        return []
    found = state.get("decisions", []) if isinstance(state, dict) else []
    return [d for d in reversed(found) if isinstance(d, dict)][:20]


@routes.get("/mine")
@page("mine.html")
async def mine(request: web.Request) -> dict[str, Any]:
    state = request.app[STATE]
    chain = await state.chain()
    cursor = Cursor.of(request.query)
    held = await chain.datasets_of(state.address)
    ids = [i for i in reversed(held) if cursor.before is None or i < cursor.before]
    owned, last = await listing(state, chain, ids, cursor)
    sold = await queries.licenses(chain, dataset_ids={r["id"] for r in owned})
    for r in owned:
        mine_ = [lic for lic in sold if lic.dataset_id == r["id"]]
        delivered = [lic for lic in mine_ if lic.status == LicenseStatus.DELIVERED]
        r["licenses_sold"] = len(delivered)
        r["revenue"] = sum(lic.price for lic in delivered)
        r["keys_pending"] = sum([await queries.license_state(chain, lic) == "waiting for key" for lic in mine_])
    job = state.jobs.get(int(request.query["job"])) if request.query.get("job", "").isdigit() else None
    return {
        "rows": owned,
        "total": len(held),
        "older": cursor.older(request.query, last) if last else None,
        "balance": await _balance(chain, state.address),
        "decisions": agent_decisions(state.home),
        "job": job,
        "permissions": PERMISSIONS,
    }


async def _check_owner(chain: Chain, state: WebState, dataset_id: int) -> None:
    owner = (await chain.get_dataset(dataset_id)).owner
    if owner.lower() != state.address.lower():
        raise web.HTTPForbidden(text=f"dataset {dataset_id} belongs to {owner}, not to this home's {state.address}")


Act = Callable[[WebState, Chain, int], Awaitable[Any]]


async def _confirm_page(request: web.Request, effects_of: Callable[[Chain, int], Awaitable[Effects]]) -> dict[str, Any]:
    """The confirmation page of an irreversible step: what it does (the CLI's words); its form
    posts back to the same path."""
    state = request.app[STATE]
    chain = await state.chain()
    dataset_id = int(request.match_info["dataset_id"])
    await _check_owner(chain, state, dataset_id)
    effects = await effects_of(chain, dataset_id)
    return {"title": effects.question, "effects": list(effects.lines), "action": request.path, "button": effects.button}


async def _act(request: web.Request, act: Act) -> web.Response:
    """The ``POST`` of an irreversible step: do it, then back to the owner's page."""
    state = request.app[STATE]
    await act(state, await state.chain(), int(request.match_info["dataset_id"]))
    raise web.HTTPSeeOther("/mine")


@routes.get(r"/mine/{dataset_id:\d+}/revoke")
@page("confirm.html")
async def revoke_confirm(request: web.Request) -> dict[str, Any]:
    return await _confirm_page(request, revoke_effects)


@routes.post(r"/mine/{dataset_id:\d+}/revoke")
async def revoke(request: web.Request) -> web.Response:
    return await _act(request, lambda state, chain, ds: chain.revoke_consent(state.keystore.account, ds))


@routes.get(r"/mine/{dataset_id:\d+}/end")
@page("confirm.html")
async def end_confirm(request: web.Request) -> dict[str, Any]:
    return await _confirm_page(request, end_effects)


@routes.post(r"/mine/{dataset_id:\d+}/end")
async def end(request: web.Request) -> web.Response:
    return await _act(
        request, lambda state, chain, ds: publisher.end_storage(chain, state.keystore.account, state.directory, ds)
    )


@routes.post("/mine/withdraw")
async def withdraw(request: web.Request) -> web.Response:
    """Claim every license payment whose dispute window closed, and the storage-market balance."""
    state = request.app[STATE]
    chain = await state.chain()
    account = state.keystore.account
    before = await _balance(chain, account.address)
    for license_id in before["claimable_licenses"]:
        await chain.claim_payment(account, license_id)
    if int(before["storage_market"]):
        await chain.withdraw(account)
    raise web.HTTPSeeOther("/mine")


def _int(form: Any, name: str, default: int) -> int:
    text = str(form.get(name, "") or default)
    if not text.isdigit():
        raise web.HTTPBadRequest(text=f"{name}: {text!r} is not a whole number")
    return int(text)


def terms_from(form: Any) -> LicenseTerms:
    def permission(name: str) -> Permission:
        value = str(form.get(name, "not_allowed"))
        if value not in PERMISSIONS:
            raise web.HTTPBadRequest(text=f"{name}: one of {', '.join(PERMISSIONS)}")
        return Permission[value.upper()]

    return LicenseTerms(
        ai_training=permission("ai_training"),
        ai_generative_training=permission("ai_generative_training"),
        ai_inference=permission("ai_inference"),
        data_mining=permission("data_mining"),
        commercial_use=form.get("commercial_use") == "on",
        revocable=form.get("revocable") == "on",
        license_duration=_int(form, "license_days", 0) * 86400,
    )


@routes.post("/mine/publish")
async def publish(request: web.Request) -> web.Response:
    state = request.app[STATE]
    chain = await state.chain()
    form = await request.post()
    given = str(form.get("path", "")).strip()
    path = Path(given)
    if not given or not path.is_absolute() or not await asyncio.to_thread(path.exists):
        raise web.HTTPBadRequest(text=f"there is no file or folder {given!r} on this machine (give its absolute path)")
    layout = Layout(k=_int(form, "k", 4), n=_int(form, "n", 10))
    try:
        layout.make_codec()
    except ErasureError as err:
        raise web.HTTPBadRequest(text=f"k/n: {err}") from err
    options = publisher.PublishOptions(
        layout=layout,
        price=parse_tokens(str(form.get("price", "0") or "0"), field="price"),
        terms=terms_from(form),
        epochs=max(1, _int(form, "epochs", 1000)),
    )
    title = str(form.get("title", "")).strip() or None

    async def work(job: Job) -> str:
        async with NodeClient() as client:  # the CLI's upload settings
            pub = await publisher.publish(
                path,
                chain=chain,
                keystore=state.keystore,
                directory=state.directory,
                client=client,
                staging=state.home / "staging",
                options=options,
                progress=job.progress,
                name=title,
            )
        titles.remember(state.home, pub.manifest_hash, pub.manifest.name)
        job.stage, job.done = "done", job.total
        job.link = f"/datasets/{pub.dataset_id}"
        return f"published dataset {pub.dataset_id} ({pub.manifest.k}-of-{pub.manifest.n}), storage deal {pub.deal_id}"

    job = state.jobs.start("publish", f"publish {path.name}", work, explain=explain)
    raise web.HTTPSeeOther(f"/mine?job={job.job_id}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_routes(routes)
