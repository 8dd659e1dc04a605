"""The lab's page: licenses bought from this home, their state, fetch with progress, receipts, refunds.

Fetching runs as a background job (:mod:`.jobs`) writing to ``HOME/downloads/license-N``; the page
polls its progress. A license whose key has not come yet is refused with the time left before the
payment can be taken back; a receipt is the signed consent receipt of :mod:`market.audit`, in the
formats that module offers (only its JSON today: a later receipts branch adds more).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from contracts.models import LicenseStatus
from datasov.cli import queries
from market import audit, buyer
from storage_node.client import NodeClient

from .errors import explain
from .filters import duration, when
from .jobs import Job
from .render import page
from .state import STATE, WebState

routes = web.RouteTableDef()


def license_id_of(request: web.Request) -> int:
    return int(request.match_info["license_id"])


async def _rows(state: WebState) -> list[dict[str, Any]]:
    chain = await state.chain()
    out = []
    for lic in await queries.licenses(chain, buyer=state.address):
        row = await queries.license_json(chain, lic)
        row["key_delivered"] = lic.status == LicenseStatus.DELIVERED
        row["consent_revoked_at"] = await chain.consent_revoked_at(lic.dataset_id)
        row["delivered_at"] = lic.delivered_at
        out.append(row)
    return list(reversed(out))  # newest first


@routes.get("/licenses")
@page("licenses.html")
async def licenses(request: web.Request) -> dict[str, Any]:
    state = request.app[STATE]
    job = state.jobs.get(int(request.query["job"])) if request.query.get("job", "").isdigit() else None
    return {
        "rows": await _rows(state),
        "job": job,
        "now": await (await state.chain()).timestamp(),
        "formats": export_formats(),
    }


def _out_dir(state: WebState, license_id: int) -> Path:
    base = state.downloads / f"license-{license_id}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


@routes.post(r"/licenses/{license_id:\d+}/fetch")
async def fetch(request: web.Request) -> web.Response:
    state = request.app[STATE]
    chain = await state.chain()
    license_id = license_id_of(request)
    lic = await chain.get_license(license_id)
    if lic.status == LicenseStatus.PENDING:
        now = await chain.timestamp()
        left = lic.delivery_deadline - now
        if left > 0:
            raise buyer.KeyNotDelivered(
                f"the key for license {license_id} has not been delivered yet; the owner's key agent has until "
                f"{when(lic.delivery_deadline)} (in {duration(left)}), after which you can take your payment back",
                refundable=False,
            )
        raise buyer.KeyNotDelivered(
            f"the key for license {license_id} was not delivered by its deadline ({when(lic.delivery_deadline)})",
            refundable=True,
        )
    await buyer.usable_license(chain, license_id)  # refunded, expired, revoked: refused now, not in the job
    dataset = await chain.get_dataset(lic.dataset_id)
    out = _out_dir(state, license_id)
    out.parent.mkdir(parents=True, exist_ok=True)

    async def work(job: Job) -> str:
        async with NodeClient() as client:  # the CLI's fetch settings: patient with slow holders
            report = await buyer.fetch(
                chain,
                state.keystore,
                state.directory,
                client,
                license_id,
                out,
                progress=lambda n: job.progress("fetch", n, dataset.plaintext_size),
            )
        job.stage, job.done = "done", job.total
        return f"wrote {report.bytes_written:,} bytes to {out} in {report.seconds:.1f} s"

    job = state.jobs.start("fetch", f"fetch license {license_id}", work, explain=explain)
    raise web.HTTPSeeOther(f"/licenses?job={job.job_id}#license-{license_id}")


def export_formats() -> tuple[str, ...]:
    """The document formats :mod:`market.audit` can export a training mix of receipts to (none
    until the receipts branch lands: the page shows the export form once there are some)."""
    return tuple(getattr(audit, "FORMATS", ()))


@routes.get("/licenses/export")
async def export(request: web.Request) -> web.Response:
    """One document (SPDX, Croissant, the EU AI Act summary...) for the receipts of every license
    whose key was delivered."""
    state = request.app[STATE]
    fmt = request.query.get("format", "")
    exporter = getattr(audit, "export", None)
    if fmt not in export_formats() or exporter is None:
        raise web.HTTPBadRequest(text=f"format {fmt!r}: one of {', '.join(export_formats()) or '(none yet)'}")
    chain = await state.chain()
    delivered = [
        lic for lic in await queries.licenses(chain, buyer=state.address) if lic.status == LicenseStatus.DELIVERED
    ]
    if not delivered:
        raise web.HTTPBadRequest(text="no license with a delivered key: nothing to export")
    receipts = [await audit.build_receipt(chain, lic.license_id, state.keystore.account) for lic in delivered]
    document = exporter(receipts, fmt, created=await chain.timestamp())
    return web.Response(
        body=json.dumps(document, indent=2, sort_keys=True).encode(),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="licensed-data-{fmt}.json"'},
    )


@routes.post(r"/licenses/{license_id:\d+}/refund")
async def refund(request: web.Request) -> web.Response:
    state = request.app[STATE]
    chain = await state.chain()
    await chain.refund(state.keystore.account, license_id_of(request))
    raise web.HTTPSeeOther("/licenses")


@routes.get(r"/licenses/{license_id:\d+}/receipt")
async def receipt(request: web.Request) -> web.Response:
    state = request.app[STATE]
    chain = await state.chain()
    license_id = license_id_of(request)
    body = await audit.build_receipt(chain, license_id, state.keystore.account)
    return web.Response(
        body=json.dumps(body, indent=2, sort_keys=True).encode(),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="receipt-license-{license_id}.json"'},
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_routes(routes)
