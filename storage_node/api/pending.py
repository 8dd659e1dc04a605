"""Pending uploads for draft deals (streaming publish; see :mod:`storage_node.store.pending`).

    PUT  /v1/pending/{deal}/{index}            a share's bytes before its root exists (signed pending order)
    POST /v1/pending/{deal}/{index}/activate   make it a share: an ordinary storage order, checked
                                               against the root committed on-chain; the body, if
                                               any, is the dataset's manifest, kept with the share

The pending order (``X-Datasov-Pending``) is checked like a storage order before a byte is read:
Content-Length against the order and the node's limits (413), signature (401), addressing and expiry
(403), nonce (409), then the draft deal on-chain (the signer owns it, this node holds share
``index``, the size is exactly the deal's share size: :meth:`DealAuthorizer.pending`). A body longer
than the order says is refused (422 ``upload_mismatch``) and nothing is kept. The activation's
order must name the deal and share of the URL; its root must be part of the committed commitment
root (the ordinary authoriser) and equal the root the node computed from the bytes it holds. A
manifest sent with it (one request instead of an activation and a ``PUT /v1/manifests``) must hash
to the order's dataset and name the order's share root, checked before anything changes (422
``bad_manifest``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from erasure import manifest

from .. import orders
from ..errors import BadManifest, OrderError, ShareNotFound
from ..store.shares import Upload, parse_manifest
from .app import NODE, NodeState, announce
from .receive import admit, receive

PendingAuthorizer = Callable[[str, orders.PendingOrder], Awaitable[None]]


async def allow_any_pending(signer: str, order: orders.PendingOrder) -> None:
    """Development default (a node without a chain): any correctly signed pending order is accepted."""


def _pending_authorizer(state: NodeState) -> PendingAuthorizer:
    """The chain's check when the node has one (``DealAuthorizer.pending``), else the dev default."""
    check = getattr(state.authorize, "pending", None)
    return check if callable(check) else allow_any_pending


def _address(request: web.Request) -> tuple[int, int]:
    try:
        deal, index = int(request.match_info["deal"]), int(request.match_info["index"])
    except ValueError as err:
        raise ShareNotFound("deal id and share index must be integers") from err
    if deal < 1 or not 0 <= index < 256:
        raise ShareNotFound(f"invalid deal {deal} or share index {index}")
    return deal, index


async def put_pending(request: web.Request) -> web.Response:
    state = request.app[NODE]
    deal, index = _address(request)
    order, signer = await admit(
        request,
        state,
        parse=orders.parse_pending,
        header=orders.PENDING_HEADER,
        names=lambda o: (o.deal_id, o.index),
        url=(deal, index),
        authorize=_pending_authorizer(state),
        what="pending order",
    )

    def begin() -> Awaitable[Upload]:
        return state.store.begin_pending(
            deal, index, size=order.size, leaf_size=order.leaf_size, block_size=order.block_size, owner=signer
        )

    held = await receive(request, state, begin)  # past the order's size: UploadMismatch (422), nothing kept
    state.metrics.uploads.labels("pending").inc()
    return web.json_response(
        {"deal": deal, "index": index, "size": held.size, "root": held.root.hex(), "state": "pending"}, status=202
    )


async def activate(request: web.Request) -> web.Response:
    state = request.app[NODE]
    deal, index = _address(request)
    order = orders.parse(request.headers.get(orders.ORDER_HEADER))
    signer = orders.verify(order, request.headers.get(orders.SIGNATURE_HEADER), node=state.address)
    if (order.deal_id, order.index) != (deal, index):
        raise OrderError("the order is for another share than the URL")
    length = request.content_length or 0
    if length > manifest.MAX_MANIFEST_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=manifest.MAX_MANIFEST_BYTES, actual_size=length)
    raw = await request.read() if request.can_read_body else b""
    man = parse_manifest(order.dataset, raw) if raw else None
    if man is not None and (index >= man.n or man.share_roots[index] != bytes.fromhex(order.share_root)):
        raise BadManifest("the manifest names another root for this share")
    await state.store.check_nonce(signer, order.nonce)
    await state.authorize(signer, order)  # the committed root, the share's proof, the provider
    await state.store.use_nonce(signer, order.nonce, order.expiry)
    record = await state.store.activate(
        deal,
        index,
        dataset=order.dataset,
        root=bytes.fromhex(order.share_root),
        share_proof=tuple(bytes.fromhex(h) for h in order.share_proof),
    )
    if man is not None:
        await state.store.keep_manifest(record.dataset, man)
    state.metrics.uploads.labels("ok").inc()
    state.activity.accepted(record.dataset, index, record.size, signer)
    await announce(state, record.dataset, index)
    body = {"dataset": record.dataset, "index": index, "size": record.size, "root": record.root.hex(), "signer": signer}
    return web.json_response(body, status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_put("/v1/pending/{deal}/{index}", put_pending)
    app.router.add_post("/v1/pending/{deal}/{index}/activate", activate)
