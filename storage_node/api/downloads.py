"""Serving shares: ``GET``/``HEAD /v1/shares/{dataset}/{index}``, whole or one ``Range``.

- A small range (at most a quarter of a block, see :meth:`ShareStore.is_small`) is verified leaf by
  leaf against the kept leaf digests of its block(s), from the page cache on the event loop through a
  kept open descriptor, and answered as one :class:`web.Response`: headers and body in one write.
- Anything larger, and whole shares, are verified a few MiB ahead (worker threads, reading the
  request's own open file) and sent from that file with the kernel's sendfile (``loop.sendfile``;
  plain writes where the transport has none). A bad first block is a clean 503; a bad later one
  cuts the connection after the verified spans before it (the status line is out).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, BinaryIO

from aiohttp import hdrs, web

from ..errors import CorruptShare, ShareNotFound
from .ranges import byte_range

if TYPE_CHECKING:
    from .app import Metrics, NodeState

log = logging.getLogger("datasov.node.api")


async def serve_share(request: web.Request, state: NodeState, dataset: str, index: int) -> web.StreamResponse:
    """GET and HEAD of a share (``dataset``/``index`` already checked): the whole share or one range."""
    record = await state.store.get(dataset, index)
    headers = {
        "X-Datasov-Root": record.root.hex(),
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    start, stop = byte_range(request.headers.get(hdrs.RANGE), record.size)
    partial = (start, stop) != (0, record.size)
    if partial:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{record.size}"
    status = 206 if partial else 200
    if request.method == "HEAD":
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = stop - start
        await response.prepare(request)
        return response
    if state.store.is_small(record, start, stop):  # verified before the status line: one write, headers and body
        data = await state.store.read_small(record, start, stop)
        state.metrics.bytes_out.inc(len(data))
        state.activity.served(request.remote or "?", dataset, index, len(data))
        return web.Response(status=status, headers=headers, body=data)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = stop - start
    path = state.store.share_path(dataset, index)
    try:
        # opened on the loop (a local open is microseconds): opened in a thread, a handler cancelled by a
        # client that left would drop the file the thread had just opened, unclosed
        f = open(path, "rb")  # noqa: SIM115, ASYNC230 - verified and sent from this one open file; closed below
    except FileNotFoundError as err:  # quarantined or deleted since the lookup
        raise ShareNotFound(f"no share {dataset}/{index}") from err
    with f:
        spans = state.store.verified_spans(record, f.fileno(), start, stop)
        try:
            first = await anext(spans)  # a corrupt first block becomes a clean error, not a broken stream
            await response.prepare(request)
            await _send_spans(request, response, f, first, spans, state.metrics)
        except CorruptShare as err:
            if not response.prepared:
                raise
            # the status line is out: the only honest answer left is a cut connection
            log.warning("aborting the response for %s/%s: %s", dataset, index, err)
            request.protocol.force_close()
            if request.transport is not None:
                request.transport.abort()  # the client sees a broken read at once, not a stalled body
            return response
        except ConnectionError:  # the client went away mid-body: expected, not a fault of the node
            log.debug("client left during %s/%s", dataset, index)
            request.protocol.force_close()
            return response
        finally:
            await spans.aclose()  # the read-ahead batch is cancelled and awaited before the file closes
    await response.write_eof()
    state.activity.served(request.remote or "?", dataset, index, stop - start)
    return response


async def _send_spans(
    request: web.Request,
    response: web.StreamResponse,
    f: BinaryIO,
    first: tuple[int, int],
    spans: AsyncIterator[tuple[int, int]],
    metrics: Metrics,
) -> None:
    """Send verified spans of the share file with the kernel's sendfile (plain writes where the
    transport cannot): each span was read from this file and checked against its block roots just
    before, and the next span is read and checked while this one goes out."""
    loop = asyncio.get_running_loop()
    span: tuple[int, int] | None = first
    while span is not None:
        offset, count = span
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        try:
            await loop.sendfile(transport, f, offset, count)
        except NotImplementedError:  # a transport without sendfile (TLS): read the span again and write it
            await response.write(await asyncio.to_thread(os.pread, f.fileno(), count, offset))
        metrics.bytes_out.inc(count)
        span = await anext(spans, None)  # corruption raises CorruptShare: never sent as good
