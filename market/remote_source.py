"""A share on a node as the decoder's :class:`erasure.pipeline.ShareSource`: verified-by-the-decoder
reads over HTTP with segment-aligned read-ahead, growing waits for slow holders and a deadline.
Used by the buyer's fetch and by the repair agent."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from typing import Any

from erasure.manifest import Manifest
from storage_node.client import NodeClient, RemoteError
from storage_node.errors import NodeError


class ShareSlow(TimeoutError):
    """A holder has not answered a read yet (the decoder asks the others, then this one again)."""


class RemoteShareSource:
    """A share on a node, read from the decoder's worker threads through the event loop.

    Reads ahead: blocks are grouped in windows of ``readahead`` consecutive segments, aligned on
    segment numbers (window w covers segments ``[w * readahead, (w + 1) * readahead)``, bytes
    ``[w * readahead * block_size, min(that + readahead * block_size, share_size))``); the first
    request for a block fetches its whole window in one HTTP range request, kept until the decoder
    has moved past it. The alignment comes from the layout, never from the size of the block asked
    for: the last segment's block is shorter than the others. Without ``share_size`` and
    ``block_size`` every block is its own range request. Nothing is trusted here: the decoder
    checks every block against its committed root.
    """

    def __init__(
        self,
        client: NodeClient,
        url: str,
        dataset: str,
        index: int,
        loop: asyncio.AbstractEventLoop,
        *,
        share_size: int = 0,
        block_size: int = 0,
        readahead: int = 8,
        first_wait: float | None = None,
        deadline: float | None = None,
    ) -> None:
        """``first_wait``: seconds a read may take before :class:`ShareSlow` says "not yet" (the
        request keeps running; the next wait on this share is twice as long); None waits for the
        client's own timeouts. ``deadline``: ``time.monotonic()`` after which a read that has not
        answered gives up (an OSError; ``failure`` says "timed out")."""
        self.client = client
        self.url = url
        self.dataset = dataset
        self.index = index
        self.share_size = share_size
        self.block_size = block_size
        self.readahead = readahead
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: dict[int, Future[bytes]] = {}  # window number -> its bytes
        self._direct_pending: dict[tuple[int, int], Future[bytes]] = {}  # (offset, size) -> bytes
        self._roots: Future[list[bytes]] | None = None
        self._wait = first_wait
        self.deadline = deadline
        self.failure: tuple[str, str] | None = None  # ("timed out" | "refused" | "unreachable", why)

    @classmethod
    def for_manifest(
        cls,
        client: NodeClient,
        url: str,
        man: Manifest,
        index: int,
        loop: asyncio.AbstractEventLoop,
        *,
        readahead: int = 8,
        first_wait: float | None = None,
        deadline: float | None = None,
    ) -> RemoteShareSource:
        """Share ``index`` of the dataset ``man`` describes, reading ahead along its layout."""
        return cls(
            client,
            url,
            man.hash().hex(),
            index,
            loop,
            share_size=man.share_size,
            block_size=man.block_size,
            readahead=readahead,
            first_wait=first_wait,
            deadline=deadline,
        )

    def start(self) -> None:
        """Ask for the block roots now (from any thread), so that many holders are asked at once."""
        with self._lock:
            if self._roots is None:
                self._roots = asyncio.run_coroutine_threadsafe(
                    self.client.roots(self.url, self.dataset, self.index), self._loop
                )

    def close(self) -> None:
        """Cancel the reads still running (slow holders whose answer is no longer needed)."""
        with self._lock:
            running: list[Future[Any]] = [*self._pending.values(), *self._direct_pending.values()]
            running += [self._roots] if self._roots is not None else []
            self._pending.clear()
            self._direct_pending.clear()
        for fut in running:
            fut.cancel()

    def _result(self, fut: Future[Any]) -> Any:
        wait = self._wait
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                fut.cancel()
                self.failure = ("timed out", "no answer before the fetch deadline")
                raise OSError(f"{self.url}: share {self.index}: no answer before the fetch deadline")
            wait = left if wait is None else min(wait, left)
        try:
            return fut.result(timeout=wait)
        except TimeoutError:  # not an answer yet: the request keeps running, the next wait is longer
            if self._wait is not None:
                self._wait *= 2
            raise ShareSlow(f"{self.url}: share {self.index}: no answer in {wait:.1f} s") from None
        except CancelledError as err:
            raise OSError(f"{self.url}: share {self.index}: read cancelled") from err
        except RemoteError as err:  # the decoder treats OSError as "this share is unavailable"
            self.failure = ("refused", str(err))
            raise OSError(f"{self.url}: {err}") from err
        except NodeError as err:
            self.failure = ("unreachable", str(err))
            raise OSError(f"{self.url}: {err}") from err

    def block_roots(self) -> Sequence[bytes]:
        self.start()
        assert self._roots is not None
        roots: list[bytes] = self._result(self._roots)
        return roots

    def _direct(self, offset: int, size: int) -> bytes:
        with self._lock:
            fut = self._direct_pending.get((offset, size))
            if fut is None:
                fut = asyncio.run_coroutine_threadsafe(
                    self.client.get_share(self.url, self.dataset, self.index, start=offset, end=offset + size),
                    self._loop,
                )
                self._direct_pending[(offset, size)] = fut
        data: bytes = self._result(fut)
        with self._lock:
            self._direct_pending.pop((offset, size), None)
        return data

    def read_block(self, segment: int, offset: int, size: int) -> bytes:
        if self.readahead <= 1 or not self.share_size or not self.block_size:
            return self._direct(offset, size)
        number = segment // self.readahead
        span = self.readahead * self.block_size
        start = number * span
        end = min(start + span, self.share_size)
        if not start <= offset <= offset + size <= end:  # not a block of this layout: no window for it
            return self._direct(offset, size)
        with self._lock:
            fut = self._pending.get(number)
            if fut is None:
                fut = asyncio.run_coroutine_threadsafe(
                    self.client.get_share(self.url, self.dataset, self.index, start=start, end=end), self._loop
                )
                self._pending[number] = fut
                for old in [w for w in self._pending if w < number - 1]:
                    del self._pending[old]  # the decoder has moved past these windows
        chunk: bytes = self._result(fut)
        return chunk[offset - start : offset - start + size]
