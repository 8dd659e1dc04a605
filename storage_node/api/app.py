"""The node's HTTP API (aiohttp).

    PUT  /v1/shares/{dataset}/{index}          streaming upload with a signed storage order
    GET  /v1/shares/{dataset}/{index}          the share (Range supported), every block verified
    HEAD /v1/shares/{dataset}/{index}          size and root
    DELETE /v1/shares/{dataset}/{index}        owner-ordered deletion (signed delete order)
    GET  /v1/shares/{dataset}/{index}/roots    block roots (32 bytes each), for verifying decoders
    GET  /v1/shares/{dataset}/{index}/proof?leaf=N   leaf bytes and Merkle proof (JSON)
    PUT  /v1/manifests/{dataset}               a dataset's manifest (must hash to the id; shares held here)
    GET  /v1/manifests/{dataset}               the manifest, for buyers (verify its hash against the chain)
    GET  /v1/health                            liveness, capacity
    GET  /metrics                              Prometheus
    PUT  /v1/pending/{deal}/{index}, POST .../activate   pending uploads of draft deals (see .pending)

Every request is checked before it touches disk: path and id syntax, Content-Length against the
order and the node's limits (413), the order's signature (401) and addressing/expiry (403), its
nonce (409), authorisation of the signer (403/422), capacity (507). Errors are JSON
``{"error": code, "message": text}``. Uploads have an idle timeout, an overall deadline (a minimum
rate) and a concurrency cap (both upload routes share these checks and the receive loop:
:mod:`.receive`); connections are capped and timed out by :mod:`.gate`. Shares are
served (small ranges in one write, the rest through sendfile) by :mod:`.downloads`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import hdrs, web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from erasure import manifest

from .. import orders
from ..activity import Activity
from ..errors import NodeError, NotAuthorized, OrderError, ShareNotFound
from ..store.index import ShareRecord
from ..store.shares import ShareStore, Upload, check_address
from .downloads import serve_share
from .receive import admit, receive

log = logging.getLogger("datasov.node.api")

Authorizer = Callable[[str, orders.StorageOrder], Awaitable[None]]
"""Decides whether ``signer`` may place ``order`` (raise a NodeError to refuse)."""
DeletionCheck = Callable[[ShareRecord], Awaitable[None]]
"""Decides whether a share may be deleted now, on its owner's order (raise a NodeError to refuse)."""


async def allow_any(signer: str, order: orders.StorageOrder) -> None:
    """Development default: any correctly signed order is accepted."""


async def allow_deletion(record: ShareRecord) -> None:
    """Default without a chain: nothing is owed, the owner's order is enough."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("datasov_http_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.bytes_in = Counter("datasov_bytes_received", "Share bytes received", registry=self.registry)
        self.bytes_out = Counter("datasov_bytes_served", "Share bytes served", registry=self.registry)
        self.uploads = Counter("datasov_uploads", "Uploads by result", ["result"], registry=self.registry)
        self.corruptions = Gauge("datasov_corrupt_shares", "Shares found corrupted on disk", registry=self.registry)
        self.used = Gauge("datasov_used_bytes", "Bytes stored", registry=self.registry)
        self.capacity = Gauge("datasov_capacity_bytes", "Capacity", registry=self.registry)
        self.proofs = Counter("datasov_storage_proofs", "Storage proofs by result", ["result"], registry=self.registry)
        self.proof_gas = Counter("datasov_storage_proof_gas", "Gas spent on storage proofs", registry=self.registry)
        self.fees_claimed = Counter(
            "datasov_fees_claimed_tokens", "Storage fees claimed (token base units)", registry=self.registry
        )
        self._request_counts: dict[tuple[str, int], Any] = {}  # labelled children, looked up once each

    def request_done(self, route: str, status: int) -> None:
        key = (route, status)
        child = self._request_counts.get(key)
        if child is None:
            child = self._request_counts[key] = self.requests.labels(route, str(status))
        child.inc()


@dataclass
class NodeState:
    store: ShareStore
    address: str
    authorize: Authorizer = allow_any
    may_delete: DeletionCheck = allow_deletion
    max_share_size: int = 64 << 30
    idle_timeout: float = 30.0
    upload_grace: float = 30.0
    min_upload_rate: int = 256 * 1024
    """An upload must end within ``upload_grace + size / min_upload_rate`` seconds (else 408)."""
    max_uploads: int = 8
    on_stored: Callable[[str, int], Awaitable[None]] | None = None
    """Called after a share is committed (the node provides it in the DHT)."""
    metrics: Metrics = field(default_factory=Metrics)
    activity: Activity = field(init=False)
    """The operator's log: accepted shares, downloads, summaries (see :mod:`storage_node.activity`)."""
    uploads: asyncio.Semaphore = field(init=False)
    active_uploads: int = field(init=False, default=0)
    upload_changes: asyncio.Condition = field(init=False)
    """Notified whenever an upload takes or gives back its slot (tests wait on it)."""

    def __post_init__(self) -> None:
        self.activity = Activity(self.metrics.registry)
        self.uploads = asyncio.Semaphore(self.max_uploads)
        self.upload_changes = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def upload_slot(self) -> AsyncIterator[None]:
        async with self.uploads:
            await self._count_upload(+1)
            try:
                yield
            finally:
                await self._count_upload(-1)

    async def _count_upload(self, delta: int) -> None:
        async with self.upload_changes:
            self.active_uploads += delta
            self.upload_changes.notify_all()


NODE = web.AppKey("node", NodeState)


_BODY_HEADERS = frozenset({hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH, hdrs.CONTENT_ENCODING})


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON error answer, keeping the headers its status needs (Allow, Retry-After, Content-Range)."""
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    metrics = request.app[NODE].metrics
    resource = request.match_info.route.resource
    try:
        response = await handler(request)
    except NodeError as err:
        response = _error(err.status, err.code, str(err), err.headers())
    except web.HTTPException as err:
        if err.status < 400:
            raise
        kept = {k: v for k, v in err.headers.items() if k not in _BODY_HEADERS}  # Allow, Retry-After...
        response = _error(err.status, err.reason.lower().replace(" ", "_"), err.text or err.reason, kept)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = _error(500, "internal", "internal error")
    metrics.request_done(resource.canonical if resource is not None else "unmatched", response.status)
    return response


def _address(request: web.Request) -> tuple[str, int]:
    dataset = request.match_info["dataset"]
    try:
        index = int(request.match_info["index"])
    except ValueError as err:
        raise ShareNotFound("share index must be an integer") from err
    check_address(dataset, index)
    return dataset, index


async def put_share(request: web.Request) -> web.Response:
    state = request.app[NODE]
    dataset, index = _address(request)
    order, signer = await admit(
        request,
        state,
        parse=orders.parse,
        header=orders.ORDER_HEADER,
        names=lambda o: (o.dataset, o.index),
        url=(dataset, index),
        authorize=state.authorize,
        what="order",
    )

    def begin() -> Awaitable[Upload]:
        return state.store.begin(
            order.dataset,
            order.index,
            root=bytes.fromhex(order.share_root),
            size=order.size,
            leaf_size=order.leaf_size,
            block_size=order.block_size,
            deal_id=order.deal_id,
            owner=signer,
            share_proof=tuple(bytes.fromhex(h) for h in order.share_proof),
        )

    record = await receive(request, state, begin)
    state.metrics.uploads.labels("ok").inc()
    state.activity.accepted(dataset, index, record.size, signer)
    await announce(state, dataset, index)
    return web.json_response(
        {"dataset": dataset, "index": index, "size": record.size, "root": record.root.hex(), "signer": signer},
        status=201,
    )


async def announce(state: NodeState, dataset: str, index: int) -> None:
    """Tell discovery about a share just stored (uploaded, or a pending one activated)."""
    if state.on_stored is not None:
        try:
            await state.on_stored(dataset, index)
        except Exception:  # stored is stored: discovery catches up at the next announcement
            log.exception("could not announce %s/%s", dataset, index)


async def get_share(request: web.Request) -> web.StreamResponse:
    dataset, index = _address(request)
    return await serve_share(request, request.app[NODE], dataset, index)


async def delete_share(request: web.Request) -> web.Response:
    """Owner-ordered deletion: a delete order signed by the account that stored the share."""
    state = request.app[NODE]
    dataset, index = _address(request)
    order = orders.parse_delete(request.headers.get(orders.DELETE_HEADER))
    signer = orders.verify(order, request.headers.get(orders.SIGNATURE_HEADER), node=state.address)
    if (order.dataset, order.index) != (dataset, index):
        raise OrderError("the delete order is for another share than the URL")
    await state.store.use_nonce(signer, order.nonce, order.expiry)
    record = await state.store.get(dataset, index)
    if signer.lower() != record.owner.lower():
        raise NotAuthorized(f"{signer} did not store this share")
    await state.may_delete(record)  # never delete what the chain still asks this node to prove
    await state.store.delete(dataset, index)
    return web.json_response({"dataset": dataset, "index": index, "deleted": True})


async def put_manifest(request: web.Request) -> web.Response:
    state = request.app[NODE]
    dataset = request.match_info["dataset"]
    length = request.content_length or 0
    if length > manifest.MAX_MANIFEST_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=manifest.MAX_MANIFEST_BYTES, actual_size=length)
    raw = await request.read()
    await state.store.put_manifest(dataset, raw)
    return web.json_response({"dataset": dataset, "stored": True}, status=201)


async def get_manifest(request: web.Request) -> web.Response:
    state = request.app[NODE]
    raw = await state.store.get_manifest(request.match_info["dataset"])
    return web.Response(body=raw, content_type="application/json")


async def get_roots(request: web.Request) -> web.Response:
    state = request.app[NODE]
    record = await state.store.get(*_address(request))
    roots = await state.store.block_roots(record)
    return web.Response(body=b"".join(roots), content_type="application/octet-stream")


async def get_proof(request: web.Request) -> web.Response:
    state = request.app[NODE]
    record = await state.store.get(*_address(request))
    try:
        leaf = int(request.query["leaf"])
    except (KeyError, ValueError) as err:
        raise web.HTTPBadRequest(text="query parameter leaf=N is required") from err
    leaf_bytes, proof = await state.store.prove(record, leaf)
    return web.json_response({"root": record.root.hex(), "leaf": leaf_bytes.hex(), **proof.to_json()})


async def health(request: web.Request) -> web.Response:
    state = request.app[NODE]
    used = await state.store.used()
    return web.json_response(
        {
            "status": "ok",
            "address": state.address,
            "capacity": state.store.capacity,
            "used": used,
            "free": max(0, await state.store.free()),  # the disk's free space when it is the smaller
            "corrupt_shares": state.store.corruptions,
        }
    )


async def metrics(request: web.Request) -> web.Response:
    state = request.app[NODE]
    state.metrics.used.set(await state.store.used())
    state.metrics.capacity.set(state.store.capacity)
    state.metrics.corruptions.set(state.store.corruptions)
    body = generate_latest(state.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(state: NodeState) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=64 * 1024)
    app[NODE] = state
    share = "/v1/shares/{dataset}/{index}"
    app.router.add_put(share, put_share)
    app.router.add_get(share, get_share)  # also answers HEAD
    app.router.add_delete(share, delete_share)
    app.router.add_get(share + "/roots", get_roots)
    app.router.add_get(share + "/proof", get_proof)
    app.router.add_put("/v1/manifests/{dataset}", put_manifest)
    app.router.add_get("/v1/manifests/{dataset}", get_manifest)
    app.router.add_get("/v1/health", health)
    app.router.add_get("/metrics", metrics)
    from . import pending  # its own module (it imports this one)

    pending.add_routes(app)
    return app
