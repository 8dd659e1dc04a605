"""Receiving a share's bytes: the one definition behind ``PUT /v1/shares/{dataset}/{index}`` (a
storage order, :mod:`.app`) and ``PUT /v1/pending/{deal}/{index}`` (a pending order, :mod:`.pending`).

:func:`admit` checks the request before a byte of its body is read, in this order: Content-Length
present (411), order header (400/422), order size and Content-Length within the node's limit (413),
signature (401), addressing and expiry (403), the order names the URL's share and exactly the
Content-Length (422), nonce unused (409), the authoriser (the chain, last: 403/422), then the nonce
is spent. :func:`receive` takes an upload slot (503 ``busy`` when all are taken), reserves the
space (``begin``: 507 when it does not fit) and streams the body into the store: an idle timeout
between reads of the body and an overall deadline (``upload_grace + size / min_upload_rate``) both
answer 408; a client that leaves is ``UploadAborted``; any failure leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from aiohttp import web

from .. import orders
from ..errors import Busy, OrderError, UploadAborted
from ..store.index import ShareRecord
from ..store.layout import FLUSH
from ..store.uploads import Upload

if TYPE_CHECKING:
    from .app import NodeState

log = logging.getLogger("datasov.node.api")

Order = TypeVar("Order", orders.StorageOrder, orders.PendingOrder)


async def admit(
    request: web.Request,
    state: NodeState,
    *,
    parse: Callable[[str | None], Order],
    header: str,
    names: Callable[[Order], tuple[object, ...]],
    url: tuple[object, ...],
    authorize: Callable[[str, Order], Awaitable[None]],
    what: str,
) -> tuple[Order, str]:
    """The order of an upload request and its signer, once every check passed (see the module).

    ``names(order)`` must equal ``url`` (the share the URL addresses); ``what`` names the order in
    the error messages ("order", "pending order")."""
    length = request.content_length
    if length is None:
        raise web.HTTPLengthRequired(text="Content-Length is required")
    order = parse(request.headers.get(header))
    if order.size > state.max_share_size or length > state.max_share_size:
        raise web.HTTPRequestEntityTooLarge(max_size=state.max_share_size, actual_size=length)
    signer = orders.verify(order, request.headers.get(orders.SIGNATURE_HEADER), node=state.address)
    if names(order) != url:
        raise OrderError(f"the {what} is for another share than the URL")
    if order.size != length:
        raise OrderError(f"Content-Length {length} differs from the order's size {order.size}")
    await state.store.check_nonce(signer, order.nonce)  # a replay costs no chain call
    await authorize(signer, order)  # the chain, last (see authorize.DealAuthorizer)
    await state.store.use_nonce(signer, order.nonce, order.expiry)
    return order, signer


async def receive(request: web.Request, state: NodeState, begin: Callable[[], Awaitable[Upload]]) -> ShareRecord:
    """Take an upload slot, ``begin`` the upload (reserve its space) and stream the body into it."""
    if state.uploads.locked():
        raise Busy("too many uploads in progress", retry_after=1)
    async with state.upload_slot():
        try:
            upload = await begin()
            return await _stream(request, state, upload)
        except (ConnectionError, asyncio.CancelledError) as err:  # the client went away: expected, not a fault
            log.info(
                "upload to %s aborted by the client after %d of %s bytes",
                request.path,
                request.content.total_bytes,
                request.content_length,
            )
            state.metrics.uploads.labels("aborted").inc()
            if isinstance(err, asyncio.CancelledError):
                raise
            raise UploadAborted("the connection was lost mid-upload") from err


async def _stream(request: web.Request, state: NodeState, upload: Upload) -> ShareRecord:
    """The body into ``upload`` and committed; any failure aborts it (nothing left behind).

    One timeout context re-armed per read (no task per chunk, as ``wait_for`` would make) for the
    idle limit, inside one for the whole upload's deadline. Only now, admitted and holding one of
    the few upload slots, may the connection buffer up to ``2 * FLUSH`` bytes of body (aiohttp's
    default is 128 KiB, what every connection not yet admitted keeps): the socket is read in large
    pieces and seldom paused; the upload joins what it received once per batch."""
    loop = asyncio.get_running_loop()
    deadline = state.upload_grace + upload.record.size / max(1, state.min_upload_rate)
    content = request.content
    widen = getattr(content, "set_read_chunk_size", None)  # aiohttp >= 3.14
    if widen is not None:
        widen(FLUSH)
    try:
        async with asyncio.timeout(deadline), asyncio.timeout(None) as idle:  # a trickle that never idles still ends
            while True:
                idle.reschedule(loop.time() + state.idle_timeout)
                chunk, _ = await content.readchunk()  # as received: no join (readany joins what is buffered)
                idle.reschedule(None)
                if not chunk:
                    if content.at_eof():
                        break
                    continue  # the end of an HTTP chunk (chunked encoding), not of the body
                await upload.write(chunk)  # past the order's size: UploadMismatch (422), nothing kept
                state.metrics.bytes_in.inc(len(chunk))
            return await upload.commit()
    except TimeoutError as err:
        await _discard(upload)
        state.metrics.uploads.labels("timeout").inc()
        raise web.HTTPRequestTimeout(text=f"upload stalled or slower than its {deadline:.0f} s deadline") from err
    except BaseException as err:
        await _discard(upload)
        if not isinstance(err, ConnectionError | asyncio.CancelledError):
            state.metrics.uploads.labels("failed").inc()
        raise


async def _discard(upload: Upload) -> None:
    """Abort an upload to the end even if the handler is being cancelled (no part file left open)."""
    await asyncio.shield(upload.abort())
