"""Typed async client for a storage node's HTTP API, with timeouts and bounded retries.

Reads (GET/HEAD) are retried on connection errors, timeouts and transient 5xx answers (502/504 and
503 with Retry-After, never a corrupt share), with short exponential backoff; each retry waits twice
as long for the node as the try before (a slow node is not a missing one); uploads are not retried (the
caller builds a fresh order, whose nonce is new). Errors raise :class:`RemoteError` with the node's
status and error code, :class:`NodeUnavailable` when it cannot be reached, or :class:`BrokenResponse`
(a NodeUnavailable, not retried) when it cuts an answer short: the caller moves to another holder.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from erasure import merkle

from .errors import NodeError
from .orders import DeleteOrder, PendingOrder, StorageOrder

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

T = TypeVar("T")
MAX_MANIFEST = 64 * 1024


async def _chunks(data: bytes | bytearray | memoryview, size: int = 1 << 20) -> AsyncIterator[bytes]:
    """Send a buffer in pieces so a large body never holds the event loop."""
    view = memoryview(data)
    for i in range(0, len(view), size):
        yield bytes(view[i : i + size])


class RemoteError(NodeError):
    """The node answered with an error."""

    def __init__(self, status: int, code: str, message: str, *, url: str) -> None:
        super().__init__(f"{url}: {status} {code}: {message}")
        self.status = status
        self.code = code
        self.url = url


class NodeUnavailable(NodeError):
    """The node could not be reached (after retries)."""

    code = "unavailable"


class BrokenResponse(NodeUnavailable):
    """The node cut its answer short (it found corruption after the status line went out, or it
    died mid-body): that holder has failed for this read; never retried against it."""

    code = "broken_response"


class NodeClient:
    """``timeout``: seconds to connect, and between bytes of an answer, on the first try of a read;
    try n (from 0) of ``retries`` tries allows ``timeout * 2**n`` (``retries`` counts every try of a
    read, the first included: 0 and 1 both read once, without retrying). Uploads use ``timeout``
    throughout."""

    def __init__(self, *, timeout: float = 30.0, retries: int = 3, backoff: float = 0.05) -> None:
        self._base_timeout = timeout
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._retries = retries
        self._backoff = backoff
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> NodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=256, limit_per_host=32)
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @staticmethod
    def share_url(url: str, dataset: str, index: int) -> str:
        return f"{url}/v1/shares/{dataset}/{index}"

    async def _raise_for(self, resp: aiohttp.ClientResponse) -> None:
        if resp.status < 400:
            return
        try:
            body = await resp.json(content_type=None)
            if not isinstance(body, dict):  # HEAD answers carry no body; a hostile node may send anything
                raise ValueError("error body is not a JSON object")
            code, message = str(body.get("error", "error")), str(body.get("message", ""))
        except (ValueError, aiohttp.ContentTypeError):
            code, message = "error", (await resp.text())[:200]
        raise RemoteError(resp.status, code, message, url=str(resp.url))

    def _timeout_of(self, attempt: int) -> aiohttp.ClientTimeout:
        wait = self._base_timeout * 2**attempt
        return aiohttp.ClientTimeout(total=None, sock_connect=wait, sock_read=wait)

    async def _retrying(self, attempt: Callable[[aiohttp.ClientTimeout], Awaitable[T]]) -> T:
        delay = self._backoff
        last = max(1, self._retries) - 1  # retries=0 is one try without retries, as retries=1
        n = 0
        while True:
            try:
                return await attempt(self._timeout_of(n))
            except aiohttp.ClientPayloadError as err:
                raise BrokenResponse(f"node broke off its answer: {err}") from err
            except (aiohttp.ClientConnectionError, TimeoutError) as err:
                if n == last:
                    raise NodeUnavailable(f"node unreachable: {err}") from err
            except RemoteError as err:
                transient = err.status in (502, 504) or (err.status == 503 and err.code != "share_corrupted")
                if not transient or n == last:
                    raise
            await asyncio.sleep(delay)
            delay *= 2
            n += 1

    async def put_share(
        self, url: str, order: StorageOrder, signer: LocalAccount, data: bytes | AsyncIterable[bytes]
    ) -> dict[str, Any]:
        return await self._upload(self.share_url(url, order.dataset, order.index), url, order, signer, data)

    async def put_pending(
        self, url: str, order: PendingOrder, signer: LocalAccount, data: bytes | AsyncIterable[bytes]
    ) -> dict[str, Any]:
        """Send a share of a draft deal before its root is known; the node holds it pending."""
        return await self._upload(f"{url}/v1/pending/{order.deal_id}/{order.index}", url, order, signer, data)

    async def _upload(
        self,
        target: str,
        url: str,
        order: StorageOrder | PendingOrder,
        signer: LocalAccount,
        data: bytes | AsyncIterable[bytes],
    ) -> dict[str, Any]:
        """PUT a share's ``order.size`` bytes with the signed order (not retried: its nonce is spent)."""
        headers = {
            **order.headers(signer),
            "Content-Length": str(order.size),
            "Content-Type": "application/octet-stream",
        }
        body = _chunks(data) if isinstance(data, bytes | bytearray | memoryview) else data
        try:
            async with self.session.put(target, data=body, headers=headers) as resp:
                await self._raise_for(resp)
                result: dict[str, Any] = await resp.json()
                return result
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            raise NodeUnavailable(f"upload to {url} failed: {err}") from err

    async def activate(
        self, url: str, order: StorageOrder, signer: LocalAccount, *, manifest: bytes = b""
    ) -> dict[str, Any]:
        """Turn a pending share into a stored one with an ordinary order (checked against the committed
        root); ``manifest``: the dataset's manifest, left with the node in the same request."""
        target = f"{url}/v1/pending/{order.deal_id}/{order.index}/activate"
        try:
            async with self.session.post(target, headers=order.headers(signer), data=manifest or None) as resp:
                await self._raise_for(resp)
                result: dict[str, Any] = await resp.json()
                return result
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            raise NodeUnavailable(f"activation at {url} failed: {err}") from err

    async def get_share(self, url: str, dataset: str, index: int, *, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of a share (the whole share by default)."""
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"

        async def attempt(limits: aiohttp.ClientTimeout) -> bytes:
            async with self.session.get(self.share_url(url, dataset, index), headers=headers, timeout=limits) as resp:
                await self._raise_for(resp)
                return await resp.read()

        return await self._retrying(attempt)

    async def stream_share(self, url: str, dataset: str, index: int, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
        try:
            async with self.session.get(self.share_url(url, dataset, index)) as resp:
                await self._raise_for(resp)
                async for piece in resp.content.iter_chunked(chunk):
                    yield piece
        except aiohttp.ClientPayloadError as err:
            raise BrokenResponse(f"node broke off its answer: {err}") from err

    async def share_blocks(
        self, url: str, dataset: str, index: int, sizes: Iterable[int]
    ) -> AsyncGenerator[bytes | bytearray, None]:
        """The whole share in one request (the node answers it with sendfile), cut into blocks of
        ``sizes`` bytes in order: for a whole fetch. Nothing is checked here (the caller verifies
        each block against its root). Raises :class:`RemoteError`, :class:`BrokenResponse` (the
        answer ended early) or :class:`NodeUnavailable`; not retried (the caller has other holders)."""
        from .share_stream import ShareStream  # the body read on a thread (GIL released in recv)

        stream = ShareStream(self.share_url(url, dataset, index), timeout=self._base_timeout)
        pending: asyncio.Future[Any] | None = None

        async def on_thread(fn: Callable[..., T], *args: Any) -> T:
            nonlocal pending  # shielded: a cancelled reader still waits for its thread (woken by abort)
            pending = asyncio.ensure_future(asyncio.to_thread(fn, *args))
            result: T = await asyncio.shield(pending)
            return result

        try:
            await stream.connect()
            await on_thread(stream.open)
            left = iter(sizes)
            while blocks := await on_thread(stream.read, left):
                for block in blocks:
                    yield block
        finally:  # a reader cancelled mid-block (a stall, a hedge): wake its thread, wait for it, close
            stream.abort()
            if pending is not None and not pending.done():
                await asyncio.gather(pending, return_exceptions=True)
            stream.close()

    async def head(self, url: str, dataset: str, index: int) -> tuple[int, bytes]:
        async def attempt(limits: aiohttp.ClientTimeout) -> tuple[int, bytes]:
            async with self.session.head(self.share_url(url, dataset, index), timeout=limits) as resp:
                await self._raise_for(resp)
                return int(resp.headers["Content-Length"]), bytes.fromhex(resp.headers["X-Datasov-Root"])

        return await self._retrying(attempt)

    async def roots(self, url: str, dataset: str, index: int) -> list[bytes]:
        async def attempt(limits: aiohttp.ClientTimeout) -> list[bytes]:
            async with self.session.get(self.share_url(url, dataset, index) + "/roots", timeout=limits) as resp:
                await self._raise_for(resp)
                raw = await resp.read()
                return [raw[i : i + 32] for i in range(0, len(raw), 32)]

        return await self._retrying(attempt)

    async def proof(self, url: str, dataset: str, index: int, leaf: int) -> tuple[bytes, merkle.MerkleProof, bytes]:
        """(leaf bytes, proof, share root) as the node claims them: verify before trusting."""

        async def attempt(limits: aiohttp.ClientTimeout) -> tuple[bytes, merkle.MerkleProof, bytes]:
            async with self.session.get(
                self.share_url(url, dataset, index) + f"/proof?leaf={leaf}", timeout=limits
            ) as resp:
                await self._raise_for(resp)
                body = await resp.json()
                return bytes.fromhex(body["leaf"]), merkle.MerkleProof.from_json(body), bytes.fromhex(body["root"])

        return await self._retrying(attempt)

    async def delete_share(self, url: str, dataset: str, index: int, node: str, signer: LocalAccount) -> None:
        """Order the node to delete a share you stored (not retried: each order has a fresh nonce)."""
        order = DeleteOrder.new(node=node, dataset=dataset, index=index)
        try:
            async with self.session.delete(self.share_url(url, dataset, index), headers=order.headers(signer)) as resp:
                await self._raise_for(resp)
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            raise NodeUnavailable(f"delete on {url} failed: {err}") from err

    async def put_manifest(self, url: str, dataset: str, raw: bytes) -> None:
        """Leave a dataset's manifest with a node that holds one of its shares."""
        try:
            async with self.session.put(f"{url}/v1/manifests/{dataset}", data=raw) as resp:
                await self._raise_for(resp)
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            raise NodeUnavailable(f"manifest upload to {url} failed: {err}") from err

    async def get_manifest(self, url: str, dataset: str) -> bytes:
        """The manifest bytes as the node has them: check their hash before trusting them."""

        async def attempt(limits: aiohttp.ClientTimeout) -> bytes:
            async with self.session.get(f"{url}/v1/manifests/{dataset}", timeout=limits) as resp:
                await self._raise_for(resp)
                raw = bytearray()
                async for piece in resp.content.iter_any():  # read() of n bytes may return fewer
                    raw += piece
                    if len(raw) > MAX_MANIFEST:
                        raise RemoteError(502, "manifest_too_large", "manifest larger than allowed", url=url)
                return bytes(raw)

        return await self._retrying(attempt)

    async def health(self, url: str) -> dict[str, Any]:
        async def attempt(limits: aiohttp.ClientTimeout) -> dict[str, Any]:
            async with self.session.get(f"{url}/v1/health", timeout=limits) as resp:
                await self._raise_for(resp)
                result: dict[str, Any] = await resp.json()
                return result

        return await self._retrying(attempt)
