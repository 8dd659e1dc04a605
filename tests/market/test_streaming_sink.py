"""The bounded queue between the encoder thread and one upload (market.streaming.QueueSink)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from market.streaming import QueueSink

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_the_writer_waits_when_the_queue_is_full_and_the_reader_gets_everything_in_order() -> None:
    sink = QueueSink(asyncio.get_running_loop(), capacity=2)
    wrote: list[int] = []
    blocked = threading.Event()

    def writer() -> None:
        for i in range(5):
            if i == 2:
                blocked.set()  # the third write waits for the reader
            sink.write(bytes([i]) * 10)
            wrote.append(i)
        sink.close()

    thread = asyncio.ensure_future(asyncio.to_thread(writer))
    await asyncio.to_thread(blocked.wait)
    await asyncio.sleep(0)  # let the thread try the third write
    assert len(wrote) <= 2  # bounded: nothing beyond the capacity was taken while nobody read
    got = [chunk async for chunk in sink.body(lambda _n: None)]
    await thread
    assert got == [bytes([i]) * 10 for i in range(5)]


async def test_a_failed_reader_never_stalls_the_writer() -> None:
    sink = QueueSink(asyncio.get_running_loop(), capacity=1)
    sink.fail()  # the upload died

    def writer() -> None:
        for _ in range(100):
            sink.write(b"x" * 1000)  # dropped, and never waits
        sink.close()

    await asyncio.wait_for(asyncio.to_thread(writer), timeout=30)
    assert sink._queue.qsize() <= 2
