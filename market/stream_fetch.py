"""A whole fetch of a single-file format-v2 dataset: the k systematic shares streamed, nothing decoded.

    block roots of shares 0..k-1 (checked against the committed share roots) -> each of those
    shares in one GET (the node sends it with sendfile), cut into its blocks in order -> a
    segment's k blocks in: verified against their roots, its messages opened and written in place
    (:class:`erasure.systematic.SegmentWriter`, on threads: the Merkle core and AES-GCM release the
    GIL) -> the file moved into place whole

Blocks 0..k-1 of a segment are the segment cut in k, so a whole fetch needs only those k shares
and no decoding. Memory is bounded by a window: a stream reads block s only once every segment
before ``s - window`` is written (the fastest holder waits for the slowest), so what is held is
at most ``window`` segments plus those being written, whatever the dataset's size
(:class:`Window`). If a systematic holder is missing, refuses, lags (no block within ``stall``
seconds), breaks off or serves a block that fails verification, the streams stop and the segments
not written yet are decoded from any k holders (:class:`erasure.decoding.Decoder`: ranked, hedged,
every block verified), the failed holder asked last.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from erasure import folderpack, merkle
from erasure.decoding import Decoder
from erasure.errors import ErasureError, IntegrityError
from erasure.manifest import Manifest
from erasure.pipeline import ordered_results
from erasure.systematic import SegmentWriter
from storage_node.client import NodeClient
from storage_node.errors import NodeError

from .buy_errors import BuyError
from .dataset_fetch import FetchReport, WholeFetch, problems
from .fetch_phases import mark
from .holders import Holders, rank_holders
from .remote_source import RemoteShareSource

WINDOW_BYTES = 32 << 20
"""Ciphertext a whole fetch holds at most (segments received, not yet written), whatever its size."""


class Window:
    """Segments in flight, bounded: :meth:`admit` waits until segment s is within ``size`` of the
    lowest segment not written yet; :meth:`finish` notes one written (on the event loop)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.floor = 0  # every segment below is written
        self._finished: set[int] = set()  # written, above the floor (at most `size` of them)
        self._moved = asyncio.Event()
        self.aborted = False

    async def admit(self, segment: int) -> None:
        """Wait until ``segment`` may be read (or the window was aborted)."""
        while segment >= self.floor + self.size and not self.aborted:
            await self._moved.wait()

    def abort(self) -> None:
        """Let every waiter go (a stream failed: nothing more is read)."""
        self.aborted = True
        self._moved.set()

    def finish(self, segment: int) -> None:
        self._finished.add(segment)
        if self.floor not in self._finished:
            return
        while self.floor in self._finished:
            self._finished.discard(self.floor)
            self.floor += 1
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    @property
    def held(self) -> int:
        """Segments noted above the floor (bounded by ``size``)."""
        return len(self._finished)


@dataclass(frozen=True)
class _Failed:
    """A systematic stream that could not go on (share -1: not a holder's fault): decode the rest."""

    share: int
    why: str

    def __str__(self) -> str:
        return f"share {self.share}: {self.why}"


async def fetch_file(job: WholeFetch) -> FetchReport:
    """Write the single-file dataset ``job.man`` describes to ``job.out`` (through ``out.part``).
    Holds at most :data:`WINDOW_BYTES` of ciphertext (read when called)."""
    client, found, man, data_key, out = job.client, job.found, job.man, job.data_key, job.out
    threads, progress, first_wait = job.threads, job.progress, job.first_wait
    start = time.perf_counter()
    give_up = time.monotonic() + job.deadline
    listed = dict(found.urls)
    probe = asyncio.ensure_future(rank_holders(client, found, job.directory))
    roots, failed = await _systematic_roots(client, found, man)
    order, unreachable = await probe
    if failed is not None and found.urls.get(failed.share) != listed.get(failed.share):  # it moved: ask there
        roots, failed = await _systematic_roots(client, found, man)
    mark("holders ranked, systematic block roots")
    report = FetchReport.begin(job.license_id, job.dataset_id, man, found, unreachable)
    tmp = out.with_name(out.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    used: dict[int, int] = {}
    try:
        os.ftruncate(fd, man.plaintext_size)
        writer = SegmentWriter(man, data_key, fd, roots)
        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="fetch-write") as pool:

            def wrote(nbytes: int) -> None:
                report.bytes_written += nbytes
                if progress is not None:
                    progress(nbytes)

            if failed is None:
                failed = await _stream(
                    client, found, man, writer, pool, wrote, used, WINDOW_BYTES, 4 * first_wait, first_wait
                )
            mark("systematic shares streamed")
            if failed is not None:
                report.excluded[failed.share] = failed.why
            missing = writer.missing()
            if missing:
                last = [] if failed is None else [failed.share]
                ranked = [i for i in order if i not in last] + [i for i in last if i in found.urls]
                await _decode_rest(
                    client,
                    found,
                    man,
                    data_key,
                    writer,
                    ranked,
                    missing,
                    report,
                    wrote,
                    threads,
                    first_wait,
                    give_up,
                )
                mark("the rest decoded")
        if job.sync:
            os.fsync(fd)
        os.replace(tmp, out)
        if job.sync:
            folderpack.sync_dir(out.parent)  # the rename too
        mark("synced and moved into place")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        os.close(fd)
    report.shares_used = sorted(set(report.shares_used) | set(used))
    report.seconds = time.perf_counter() - start
    return report


async def _systematic_roots(
    client: NodeClient, found: Holders, man: Manifest
) -> tuple[dict[int, Sequence[bytes]], _Failed | None]:
    """Block roots of shares 0..k-1, each checked against its committed share root; the first
    share that could not give them (the streams are then not tried). A holder marked faulty on-chain
    (a missed proof) is asked like the others: its roots and blocks are checked as theirs are, and
    if it does not answer, or lies, the rest is decoded, it last."""
    wanted = range(man.k)
    missing = [j for j in wanted if j not in found.urls]
    if missing:
        return {}, _Failed(missing[0], "no holder known for this systematic share")
    answers = await asyncio.gather(
        *(client.roots(found.urls[j], man.hash().hex(), j) for j in wanted), return_exceptions=True
    )
    roots: dict[int, Sequence[bytes]] = {}
    for j, got in zip(wanted, answers, strict=True):
        if isinstance(got, NodeError):
            return roots, _Failed(j, f"block roots unavailable: {got}")
        if isinstance(got, BaseException):
            raise got
        try:
            if len(got) != man.segment_count:
                raise IntegrityError(f"{len(got)} block roots for {man.segment_count} segments", share=j)
            merkle.verify_block_roots(man.share_roots[j], got, share=j)
        except ErasureError as err:
            return roots, _Failed(j, f"block roots rejected: {err}")
        roots[j] = got
    return roots, None


async def _stream(
    client: NodeClient,
    found: Holders,
    man: Manifest,
    writer: SegmentWriter,
    pool: ThreadPoolExecutor,
    wrote: Callable[[int], None],
    used: dict[int, int],
    window_bytes: int,
    stall: float,
    lag: float,
) -> _Failed | None:
    """Stream shares 0..k-1 and write every segment; the first failure (the streams then stop). A
    stream that holds the others back (they wait ``lag`` seconds at the window for a segment it
    has not delivered) is hedged: a failure naming it, so that the rest is decoded from spares."""
    loop = asyncio.get_running_loop()
    count = man.segment_count
    window = Window(window_bytes // man.segment_size)
    arrived: dict[int, list[bytes | bytearray]] = {}  # segment -> its blocks so far (at most window.size segments)
    writes: set[asyncio.Future[int]] = set()
    failure: list[_Failed] = []
    got = dict.fromkeys(range(man.k), 0)  # share -> blocks delivered so far (in order)
    dataset = man.hash().hex()

    def written(segment: int, fut: asyncio.Future[int]) -> None:
        writes.discard(fut)
        if fut.cancelled():
            return
        err = fut.exception()
        if err is None:
            window.finish(segment)
            wrote(fut.result())
            for j in range(man.k):
                used[j] = used.get(j, 0) + 1
        elif isinstance(err, IntegrityError) and err.share is not None:
            failure.append(_Failed(err.share, f"segment {segment}: {err}"))
            window.abort()
        else:
            failure.append(_Failed(-1, f"segment {segment}: {err}"))
            window.abort()

    async def held(segment: int) -> _Failed | None:
        """Wait until ``segment`` may be read; the stream holding the window back if that takes
        over ``lag`` seconds (a holder behind the others, not a slow write: it has not delivered
        the lowest unwritten segment)."""
        while True:
            try:
                await asyncio.wait_for(window.admit(segment), lag)
                return None
            except TimeoutError:
                behind = [i for i in range(man.k) if got[i] <= window.floor]
                if behind:
                    why = f"fell {window.size} segments behind the other systematic streams for {lag:g} s"
                    return _Failed(behind[0], f"{why} (at segment {window.floor}): hedged by decoding the rest")

    async def pull(j: int) -> _Failed | None:
        sizes = (writer.block_size(s) for s in range(count))
        blocks = client.share_blocks(found.urls[j], dataset, j, sizes)
        try:
            for s in range(count):
                if (lagging := await held(s)) is not None:
                    return lagging
                if failure:
                    return None
                try:
                    block = await asyncio.wait_for(anext(blocks), stall)
                except TimeoutError:
                    return _Failed(j, f"no block within {stall:g} s (segment {s})")
                except NodeError as err:
                    return _Failed(j, f"stream broke at segment {s}: {err}")
                slot = arrived.setdefault(s, [])
                if len(slot) < man.k:
                    slot.extend([b""] * (man.k - len(slot)))
                slot[j] = block
                got[j] = s + 1
                if all(slot):
                    del arrived[s]
                    fut = loop.run_in_executor(pool, writer.write_blocks, s, slot)
                    writes.add(fut)
                    fut.add_done_callback(functools.partial(written, s))
            return await held(count - 1 + window.size)  # done: until every segment is written
        finally:
            await blocks.aclose()

    tasks = [asyncio.ensure_future(pull(j)) for j in range(man.k)]
    try:
        for done in asyncio.as_completed(tasks):
            stopped = await done
            if stopped is not None:
                failure.append(stopped)
                window.abort()
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while writes:
            await asyncio.gather(*list(writes), return_exceptions=True)
    if failure and failure[0].share < 0:
        raise BuyError(f"could not write the dataset: {failure[0]}")
    return failure[0] if failure else None


async def _decode_rest(
    client: NodeClient,
    found: Holders,
    man: Manifest,
    data_key: bytes,
    writer: SegmentWriter,
    order: list[int],
    missing: list[int],
    report: FetchReport,
    wrote: Callable[[int], None],
    threads: int,
    first_wait: float,
    give_up: float,
) -> None:
    """Decode ``missing`` segments from any k holders (``order``: whom to ask first) and write them."""
    loop = asyncio.get_running_loop()
    sources = RemoteShareSource.started(client, found.urls, man, order, first_wait=first_wait, deadline=give_up)

    def run() -> None:
        decoder = Decoder(man, data_key, sources, threads=1)
        try:
            with ThreadPoolExecutor(max(1, threads), thread_name_prefix="fetch-decode") as pool:

                def one(s: int) -> int:
                    return writer.write_segment(s, decoder.segment(s))

                tasks = (functools.partial(one, s) for s in missing)
                for nbytes in ordered_results(pool, tasks, 2 * threads + 1):
                    loop.call_soon_threadsafe(wrote, nbytes)
        except ErasureError as err:
            raise BuyError(
                f"could not rebuild dataset {report.dataset_id}: {err}; {problems(report, sources, decoder)}"
            ) from err
        finally:
            report.took(decoder.report)

    try:
        await asyncio.to_thread(run)
    finally:
        for source in sources.values():
            source.close()
