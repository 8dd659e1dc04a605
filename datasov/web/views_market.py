"""The Market page (datasets on offer, filtered) and one dataset's page with its Buy form.

Buying takes two steps: ``GET /datasets/ID/buy`` shows what the purchase will do (the escrow taken
from the wallet, the delivery deadline, whether the terms allow the purpose) and only its
``POST /datasets/ID/buy`` (with the CSRF token, the offer version seen, the price limit) buys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from contracts.chain import Chain
from contracts.terms import Purpose
from datasov.cli import queries, titles
from datasov.cli.browse import dataset_json, datasets_json
from market import buyer
from storage_node.errors import NodeError

from .render import page
from .state import STATE, WebState

routes = web.RouteTableDef()
TOKEN = 10**18
PAGE, MAX_PAGE = 25, 200  # datasets per listing page: by default, and the most a query may ask
LIVE = ("valid", "waiting for key")  # a license of these states makes a second purchase worth a warning


def parse_tokens(text: str, *, field: str) -> int:
    """'2.5' -> base units; a bad amount is a 400 page naming the field."""
    try:
        value = Decimal(text)
    except InvalidOperation as err:
        raise web.HTTPBadRequest(text=f"{field}: {text!r} is not an amount like 10 or 0.25") from err
    if not value.is_finite() or value < 0:
        raise web.HTTPBadRequest(text=f"{field}: amounts are finite and not negative")
    return int(value * TOKEN)


def parse_purpose(text: str) -> Purpose:
    try:
        return Purpose.parse(text)
    except ValueError as err:
        raise web.HTTPBadRequest(text=str(err)) from err


@dataclass(frozen=True)
class Cursor:
    """Which page of a listing (newest first): the datasets with an id below ``before`` (None: from
    the newest), at most ``limit`` of them."""

    before: int | None
    limit: int

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Cursor:
        """From ``?before=ID&limit=N``; a bad value is a 400 naming it."""
        return cls(_whole(query, "before", None, 1, None), _whole(query, "limit", PAGE, 1, MAX_PAGE) or PAGE)

    def ids(self, newest: int) -> range:
        """The ids to look at, newest first, of ``1..newest``."""
        top = newest if self.before is None else min(newest, self.before - 1)
        return range(top, 0, -1)

    def older(self, query: Mapping[str, str], last: int) -> str:
        """The link to the page after one whose last row is dataset ``last`` (other parameters kept)."""
        return "?" + urlencode({**query, "before": str(last)})


def _whole(query: Mapping[str, str], name: str, default: int | None, low: int, high: int | None) -> int | None:
    if name not in query:
        return default
    text = query[name]
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        bounds = f"{low} to {high}" if high is not None else f"{low} or more"
        raise web.HTTPBadRequest(text=f"{name}: {text!r} is not a whole number from {bounds}")
    return int(text)


async def listing(
    state: WebState,
    chain: Chain,
    ids: Sequence[int],
    cursor: Cursor,
    keep: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of ``ids`` (newest first) as rows with titles, those ``keep`` accepts: read a page's
    worth at a time until the page is full; and the last row's id if older rows may follow."""
    shown: list[dict[str, Any]] = []
    for start in range(0, len(ids), cursor.limit):
        batch = ids[start : start + cursor.limit]
        shown += [info for info, _ in await datasets_json(chain, batch) if keep(info)]
        if len(shown) >= cursor.limit:
            shown = shown[: cursor.limit]
            more = shown[-1]["id"] != ids[-1]
            break
    else:
        more = False
    found = await titles.titles(
        chain, state.directory, state.home, {r["id"]: bytes.fromhex(r["manifest_hash"]) for r in shown}, per_node=1.0
    )
    for r in shown:
        r["title"] = found[r["id"]]
    return shown, shown[-1]["id"] if more else None


def dataset_id_of(request: web.Request) -> int:
    return int(request.match_info["dataset_id"])


def _matches(row: dict[str, Any], purpose: str, max_price: int | None, max_size: int | None) -> bool:
    if purpose and row["terms"].get(purpose) == "not_allowed":
        return False
    if max_price is not None and int(row["price"]) > max_price:
        return False
    return max_size is None or int(row["size"]) <= max_size


@routes.get("/")
@page("market.html")
async def market(request: web.Request) -> dict[str, Any]:
    state = request.app[STATE]
    chain = await state.chain()
    q = request.query
    purpose = parse_purpose(q["purpose"]).name.lower() if q.get("purpose") else ""
    max_price = parse_tokens(q["max_price"], field="max price") if q.get("max_price") else None
    max_size = int(float(q["max_size_mib"]) * (1 << 20)) if q.get("max_size_mib") else None
    cursor = Cursor.of(q)
    total = await chain.dataset_count()
    shown, last = await listing(
        state, chain, cursor.ids(total), cursor, lambda r: _matches(r, purpose, max_price, max_size)
    )
    return {
        "rows": shown,
        "total": total,
        "q": q,
        "older": cursor.older(q, last) if last else None,
        "purposes": [p.name.lower() for p in Purpose],
    }


async def _holders(state: WebState, health: Any, manifest_hash: str) -> list[dict[str, Any]]:
    """Each share's holder, its on-chain health and whether it answers for the share now."""
    out: list[dict[str, Any]] = []
    for share in health.deal.shares if health.deal else ():
        entry: dict[str, Any] = {"index": share.index, "provider": share.provider, "healthy": share.healthy}
        entry["faulty"], entry["accepted"] = share.faulty, share.accepted
        try:
            url = await state.directory.url_of(share.provider)
            await state.client.head(url, manifest_hash, share.index)
            entry.update(url=url, online=True)
        except (NodeError, Exception) as err:
            entry.update(online=False, problem=str(err)[:120])
        out.append(entry)
    return out


@routes.get(r"/datasets/{dataset_id:\d+}")
@page("dataset.html")
async def dataset(request: web.Request) -> dict[str, Any]:
    state = request.app[STATE]
    chain = await state.chain()
    dataset_id = dataset_id_of(request)
    info, health = await dataset_json(chain, dataset_id)
    info["title"] = (
        await titles.titles(chain, state.directory, state.home, {dataset_id: bytes.fromhex(info["manifest_hash"])})
    )[dataset_id]
    sold = await queries.licenses(chain, dataset_ids={dataset_id})
    holders = await _holders(state, health, info["manifest_hash"])
    return {
        "d": info,
        "holders": holders,
        "reachable": sum(1 for h in holders if h["online"] and h["healthy"]),
        "licenses_sold": sum(1 for lic in sold if lic.status.name == "DELIVERED"),
        "purposes": [p.name.lower() for p in Purpose],
        "owned": info["owner"].lower() == state.address.lower(),
    }


@routes.get(r"/datasets/{dataset_id:\d+}/buy")
@page("buy.html")
async def buy_confirm(request: web.Request) -> dict[str, Any]:
    """What the purchase will do, before it is made."""
    state = request.app[STATE]
    chain = await state.chain()
    dataset_id = dataset_id_of(request)
    purpose = parse_purpose(request.query.get("purpose", "ai_training"))
    d = await chain.get_dataset(dataset_id)
    terms = await chain.get_terms(dataset_id)
    max_price = (
        parse_tokens(request.query["max_price"], field="max price") if request.query.get("max_price") else d.price
    )
    now = await chain.timestamp()
    held = [
        f"license {lic.license_id} ({state_})"
        for lic in await queries.licenses(chain, buyer=state.address, dataset_ids={dataset_id})
        if lic.purpose == purpose and (state_ := await queries.license_state(chain, lic)) in LIVE
    ]
    return {
        "held": held,
        "dataset_id": dataset_id,
        "purpose": purpose.name.lower(),
        "permission": terms.permission(purpose).name.lower(),
        "price": d.price,
        "max_price": max_price,
        "over_limit": d.price > max_price,
        "terms_version": d.terms_version,
        "deadline": now + chain.deployment.delivery_window,
        "window": chain.deployment.delivery_window,
        "wallet": await chain.balance_of(state.address),
        "revoked": await chain.consent_revoked_at(dataset_id),
        "terms": terms.to_json(),
    }


@routes.post(r"/datasets/{dataset_id:\d+}/buy")
async def buy(request: web.Request) -> web.Response:
    state = request.app[STATE]
    chain = await state.chain()
    dataset_id = dataset_id_of(request)
    form = await request.post()
    purpose = parse_purpose(str(form.get("purpose", "")))
    max_price = parse_tokens(str(form.get("max_price", "")), field="max price")
    try:
        terms_version = int(str(form.get("terms_version", "")))
    except ValueError as err:
        raise web.HTTPBadRequest(text="terms_version must be a number (the offer version you saw)") from err
    license_id = await buyer.buy(
        chain, state.keystore, dataset_id, purpose, max_price=max_price, terms_version=terms_version
    )
    raise web.HTTPSeeOther(f"/licenses#license-{license_id}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_routes(routes)
