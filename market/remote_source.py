"""A share on a node as the decoder's :class:`erasure.pipeline.ShareSource`: verified-by-the-decoder
reads over HTTP with segment-aligned read-ahead, growing waits for slow holders and a deadline.
Used by the buyer's fetch, the reader and the repair agent.

Reads are started before they are waited on (:meth:`RemoteShareSource.prefetch`: the decoder
asks k holders for a segment's blocks at once), and hedged: with a :class:`Latencies` shared by
the holders of one fetch (one holder class), a read still unanswered after that class's p95
latency for requests of its size raises :class:`ShareLagging` once per segment, so the decoder
asks a spare holder instead of waiting (Dean and Barroso, "The Tail at Scale"); the laggard's
request keeps running and is used when it comes in."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import Any

from erasure.errors import Lagging
from erasure.manifest import Manifest
from storage_node.client import NodeClient, RemoteError
from storage_node.errors import NodeError

from .latencies import Latencies
from .readahead_budget import Holder, ReadaheadBudget, budget_for

KEEP_BEHIND = 32
"""Segments behind the newest window a window not read whole is kept for (decoder threads run
that far apart at most: ``2 * threads + 1`` segments in flight; a hedged window is not read whole)."""


class ShareSlow(TimeoutError):
    """A holder has not answered a read yet (the decoder asks the others, then this one again)."""


class ShareLagging(ShareSlow, Lagging):
    """A read is behind its holder class's p95 latency: the decoder asks a spare holder now
    (a hedge; not counted towards giving up on this one)."""


@dataclass(frozen=True)
class _Read:
    """One range request in flight: its future, when it started and how many bytes it asks for."""

    future: Future[bytes]
    started: float
    size: int


class RemoteShareSource:
    """A share on a node, read from the decoder's worker threads through the event loop.

    Reads ahead: blocks are grouped in windows of ``readahead`` consecutive segments, aligned on
    segment numbers (window w covers segments ``[w * readahead, (w + 1) * readahead)``, bytes
    ``[w * readahead * block_size, min(that + readahead * block_size, share_size))``); the first
    request for a block fetches its whole window in one HTTP range request, kept until each of its
    blocks was read (or the decoder is :data:`KEEP_BEHIND` segments past it). The alignment comes
    from the layout, never from the size of the block asked for: the last segment's block is
    shorter than the others. Without ``share_size`` and
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
        latencies: Latencies | None = None,
        budget: ReadaheadBudget | None = None,
    ) -> None:
        """``first_wait``: seconds a read may take before :class:`ShareSlow` says "not yet" (the
        request keeps running; the next wait on this share is twice as long); None waits for the
        client's own timeouts. ``deadline``: ``time.monotonic()`` after which a read that has not
        answered gives up (an OSError; ``failure`` says "timed out"). ``latencies``: the holder
        class's record (shared by the sources of one fetch); with it, reads are hedged. ``budget``: the
        bytes of windows the sources of one fetch hold together (:mod:`market.readahead_budget`)."""
        self.client = client
        self.url = url
        self.dataset = dataset
        self.index = index
        self.share_size = share_size
        self.block_size = block_size
        self.readahead = readahead
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: dict[int, _Read] = {}  # window number -> its bytes
        self._consumed: dict[int, set[int]] = {}  # window number -> segments read from it
        self._direct_pending: dict[tuple[int, int], _Read] = {}  # (offset, size) -> bytes
        self._hedged: set[int] = set()  # segments this source lagged on: the next ask waits
        self.latencies = latencies
        self.budget = budget
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
        latencies: Latencies | None = None,
        budget: ReadaheadBudget | None = None,
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
            latencies=latencies,
            budget=budget,
        )

    @classmethod
    def started(
        cls,
        client: NodeClient,
        urls: dict[int, str],
        man: Manifest,
        order: Sequence[int],
        *,
        readahead: int = 8,
        first_wait: float | None = None,
        deadline: float | None = None,
        budget: ReadaheadBudget | None = None,
    ) -> dict[int, RemoteShareSource]:
        """A source per share in ``order`` (whom to ask first), one :class:`Latencies` and one
        :class:`~market.readahead_budget.ReadaheadBudget` for them all (one holder class: hedged; the
        windows of all of them bounded together), every holder's block roots asked for at once. On
        the event loop."""
        loop = asyncio.get_running_loop()
        latencies = Latencies()
        budget = budget if budget is not None else ReadaheadBudget(budget_for(man.k, readahead * man.block_size))
        sources = {
            i: cls.for_manifest(
                client,
                urls[i],
                man,
                i,
                loop,
                readahead=readahead,
                first_wait=first_wait,
                deadline=deadline,
                latencies=latencies,
                budget=budget,
            )
            for i in order
        }
        for source in sources.values():
            source.start()
        return sources

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
            running: list[Future[Any]] = [r.future for r in (*self._pending.values(), *self._direct_pending.values())]
            running += [self._roots] if self._roots is not None else []
            for number in list(self._pending):
                self._drop(number)
            self._pending.clear()
            self._consumed.clear()
            self._direct_pending.clear()
        for fut in running:
            fut.cancel()

    @property
    def held(self) -> int:
        """Bytes of the read-ahead windows this source keeps (asked for, not let go of yet)."""
        with self._lock:
            return sum(r.size for r in self._pending.values())

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

    def _launch(self, start: int, end: int) -> _Read:
        """Start a range request (under the lock); its latency is recorded when it answers."""
        fut = asyncio.run_coroutine_threadsafe(
            self.client.get_share(self.url, self.dataset, self.index, start=start, end=end), self._loop
        )
        read = _Read(fut, time.monotonic(), end - start)
        latencies = self.latencies
        if latencies is not None:
            size, started = read.size, read.started  # not `read`: future -> callback -> read -> future is a
            # cycle, which kept each window's bytes until the cycle collector ran (big bytes never make it run)

            def done(f: Future[bytes]) -> None:
                if not f.cancelled() and f.exception() is None:
                    latencies.record(size, time.monotonic() - started)

            fut.add_done_callback(done)
        return read

    def _window(self, segment: int, offset: int, size: int) -> tuple[int, int, int] | None:
        """(window number, start, end) of the read-ahead window holding this block, or None."""
        if self.readahead <= 1 or not self.share_size or not self.block_size:
            return None
        number = segment // self.readahead
        span = self.readahead * self.block_size
        start = number * span
        end = min(start + span, self.share_size)
        if not start <= offset <= offset + size <= end:  # not a block of this layout: no window for it
            return None
        return number, start, end

    def _read_for(self, segment: int, offset: int, size: int) -> tuple[_Read, int | None]:
        """The request holding this block (started now if none is) and the block's offset in that
        window (None: the request is the block alone)."""
        window = self._window(segment, offset, size)
        victims: list[tuple[Holder, int, object]] = []
        try:
            with self._lock:
                return self._read_under_lock(window, offset, size, victims)
        finally:  # windows over the fetch's budget let go of, with no source lock held (they may be another's)
            for owner, number, token in victims:
                owner.evict(number, token)

    def _read_under_lock(
        self, window: tuple[int, int, int] | None, offset: int, size: int, victims: list[tuple[Holder, int, object]]
    ) -> tuple[_Read, int | None]:
        """:meth:`_read_for` under the lock: windows over the budget are added to ``victims``."""
        if window is None:
            read = self._direct_pending.get((offset, size))
            if read is None:
                read = self._direct_pending[(offset, size)] = self._launch(offset, offset + size)
                if len(self._direct_pending) > 64:  # prefetched blocks never asked for (a hedge won)
                    for key in [key for key, r in self._direct_pending.items() if r.future.done()][:32]:
                        del self._direct_pending[key]
            return read, None
        number, start, end = window
        read = self._pending.get(number)
        if read is None:
            read = self._pending[number] = self._launch(start, end)
            if self.budget is not None:
                victims += self.budget.take(self, number, read, end - start)
            behind = max(2, -(-KEEP_BEHIND // self.readahead))
            for old in [w for w in self._pending if w < number - behind]:
                self._drop(old)  # the decoder has moved well past these (read elsewhere, or hedged)
        return read, offset - start

    def _drop(self, window: int) -> None:
        read = self._pending.pop(window, None)
        self._consumed.pop(window, None)
        if read is not None and self.budget is not None:
            self.budget.release(self, window, read)

    def evict(self, window: int, token: object) -> None:
        """The fetch's budget let go of ``window`` (least recently used): dropped if it is still the
        request ``token`` (a block of it asked for later is asked again; a read waiting on it still
        gets its answer)."""
        with self._lock:
            if self._pending.get(window) is token:
                self._drop(window)

    def _consume(self, segment: int, offset: int, size: int) -> None:
        """Note a block read from its window (under the lock); a window read whole is let go."""
        window = self._window(segment, offset, size)
        if window is None:
            return
        number, start, end = window
        seen = self._consumed.setdefault(number, set())
        seen.add(segment)
        if self.budget is not None:
            self.budget.touch(self, number)
        if len(seen) >= -(-(end - start) // self.block_size):
            self._drop(number)

    def prefetch(self, segment: int, offset: int, size: int) -> None:
        """Start the request :meth:`read_block` will wait on for this block (from any thread)."""
        self._read_for(segment, offset, size)

    def _hedge(self, segment: int, read: _Read) -> None:
        """Raise :class:`ShareLagging` if ``read`` is behind its class's p95 (once per segment)."""
        if self.latencies is None or segment in self._hedged or read.future.done():
            return
        after = self.latencies.hedge_after(read.size)
        if after is None:
            return
        try:
            read.future.result(timeout=max(0.0, read.started + after - time.monotonic()))
        except TimeoutError:
            if not self.latencies.take_hedge():
                return  # over budget: wait for this holder as without hedging
            with self._lock:
                self._hedged.add(segment)
            raise ShareLagging(
                f"{self.url}: share {self.index}: no answer in {after * 1000:.0f} ms (its holders' p95)"
            ) from None
        except (CancelledError, Exception):
            return  # the error is raised by _result

    def read_block(self, segment: int, offset: int, size: int) -> bytes:
        read, at = self._read_for(segment, offset, size)
        self._hedge(segment, read)
        chunk: bytes = self._result(read.future)
        with self._lock:
            self._hedged.discard(segment)
            if at is None:
                self._direct_pending.pop((offset, size), None)
            else:
                self._consume(segment, offset, size)
        return chunk if at is None else chunk[at : at + size]
