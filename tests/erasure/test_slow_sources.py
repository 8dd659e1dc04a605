"""A source that answers "not yet" (TimeoutError) is asked again after the others, not dropped."""

from __future__ import annotations

import os
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import decoding
from erasure.decoding import MemoryShareSource

from .test_pipeline import encode, small_layout


class Slow:
    """Raises TimeoutError ``times`` times for every read (roots included), then answers."""

    def __init__(self, inner: MemoryShareSource, times: int) -> None:
        self.inner = inner
        self.times = times
        self._asked: dict[object, int] = {}

    def _later(self, what: object) -> None:
        n = self._asked.get(what, 0)
        self._asked[what] = n + 1
        if n < self.times:
            raise TimeoutError(f"{what}: not yet ({n + 1})")

    def block_roots(self) -> Sequence[bytes]:
        self._later("roots")
        return self.inner.block_roots()

    def read_block(self, segment: int, offset: int, size: int) -> bytes:
        self._later(segment)
        return self.inner.read_block(segment, offset, size)


@settings(max_examples=10, deadline=None)
@given(delays=st.lists(st.integers(0, 3), min_size=7, max_size=7))
def test_slow_sources_still_decode(delays: list[int]) -> None:
    layout = small_layout(k=3, n=7)
    data = os.urandom(20_000)
    man, shares, key, _ = encode(data, layout)
    sources = {i: Slow(MemoryShareSource(s, man.block_size, man.leaf_size), delays[i]) for i, s in enumerate(shares)}
    decoder = decoding.Decoder(man, key, sources, threads=2)
    assert b"".join(decoder) == data
    assert not decoder.report.excluded
    if all(delays):  # nobody answered at once: the slow ones were asked again
        assert decoder.report.timeouts


def test_a_source_that_never_answers_is_dropped_and_the_rest_decode() -> None:
    layout = small_layout(k=3, n=7)
    data = os.urandom(20_000)
    man, shares, key, _ = encode(data, layout)
    sources: dict[int, object] = {i: MemoryShareSource(s, man.block_size, man.leaf_size) for i, s in enumerate(shares)}
    sources[0] = Slow(MemoryShareSource(shares[0], man.block_size, man.leaf_size), 10**9)
    decoder = decoding.Decoder(man, key, sources, threads=2)  # type: ignore[arg-type]
    assert b"".join(decoder) == data
    assert 0 not in decoder.report.blocks_used
