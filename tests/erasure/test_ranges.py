"""Random reads of a v2 dataset: exact bytes, only the covering segments, every block verified."""

import io
import os
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import envelope, pipeline
from erasure.decoding import MemoryShareSource
from erasure.errors import NotEnoughShares, NotSeekable, ParameterError
from erasure.ranges import RangeReader

LAYOUT = pipeline.Layout(k=3, n=6, block_size=4096, leaf_size=1024, message_size=4096 - 16)
SEGMENT = 3 * 4096  # three ciphertext messages per segment
DATA = os.urandom(10 * SEGMENT + 1234)


class Counting(MemoryShareSource):
    def __init__(self, data: bytes, corrupt: Sequence[int] = ()) -> None:
        super().__init__(data, 4096, 1024)
        self.reads: list[int] = []
        self.corrupt = set(corrupt)

    def read_block(self, segment: int, offset: int, size: int) -> bytes:
        self.reads.append(segment)
        block = super().read_block(segment, offset, size)
        if segment in self.corrupt:
            return bytes([block[0] ^ 1]) + block[1:]
        return block


def encode(data: bytes = DATA, layout: pipeline.Layout = LAYOUT) -> tuple[pipeline.EncodeResult, list[bytes], bytes]:
    key = envelope.new_data_key()
    sinks = [io.BytesIO() for _ in range(layout.n)]
    result = pipeline.encode([data], sinks, key=key, layout=layout)
    return result, [s.getvalue() for s in sinks], key


RESULT, SHARES, KEY = encode()


def reader(corrupt: dict[int, Sequence[int]] | None = None, **kw: int) -> tuple[RangeReader, dict[int, Counting]]:
    sources = {i: Counting(s, (corrupt or {}).get(i, ())) for i, s in enumerate(SHARES)}
    return RangeReader(RESULT.manifest, KEY, sources, threads=2, **kw), sources


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(0, len(DATA) + 10), size=st.integers(0, 3 * SEGMENT))
def test_any_range_reads_exactly_its_bytes_from_only_its_segments(offset: int, size: int) -> None:
    with reader(prefetch=0)[0] as r:
        assert r.read(offset, size) == DATA[offset : offset + size]
        covering = r.segments_for(offset, max(0, min(size, len(DATA) - offset)))
        assert r.segments_decoded == len(covering)
        assert len(covering) <= -(-size // SEGMENT) + 1


def test_one_small_read_moves_only_the_systematic_blocks_holding_it() -> None:
    r, sources = reader(prefetch=0)
    with r:  # messages 15 and 16: blocks 0 and 1 of segment 5, not the k = 3 a decode takes
        assert r.read(5 * SEGMENT + 100, 4000) == DATA[5 * SEGMENT + 100 : 5 * SEGMENT + 4100]
    assert {i: src.reads for i, src in sources.items() if src.reads} == {0: [5], 1: [5]}


def test_a_small_read_whose_systematic_block_is_bad_decodes_its_segment_from_k_others() -> None:
    r, sources = reader({0: [5]}, prefetch=0)
    with r:
        assert r.read(5 * SEGMENT + 100, 10) == DATA[5 * SEGMENT + 100 : 5 * SEGMENT + 110]
        assert r.report.bad_blocks == {0: [(5, "block does not match its committed root")]}
    assert sorted(i for i, src in sources.items() if src.reads) == [0, 1, 2, 3]  # 0 bad: 1, 2, 3 decode


def test_a_corrupt_block_is_skipped_for_another_holder() -> None:
    r, _sources = reader({0: [2], 1: [2]}, prefetch=0)
    with r:
        assert r.read(2 * SEGMENT, SEGMENT) == DATA[2 * SEGMENT : 3 * SEGMENT]
        assert {0, 1} <= set(r.report.bad_blocks)


def test_too_few_good_blocks_is_named() -> None:
    r, _ = reader({i: [4] for i in range(4)}, prefetch=0)
    with r, pytest.raises(NotEnoughShares):
        r.read(4 * SEGMENT + 1, 10)


def test_sequential_reads_prefetch_and_the_cache_is_bounded() -> None:
    r, _ = reader(cache_segments=3, prefetch=2)
    with r:
        got = b"".join(r.read(o, 5000) for o in range(0, len(DATA), 5000))
        assert got == DATA
        assert len(r._cache) <= r._capacity
        assert r.segments_decoded >= RESULT.manifest.segment_count


def test_the_last_message_and_empty_datasets() -> None:
    result, shares, key = encode(b"")
    with RangeReader(result.manifest, key, {i: MemoryShareSource(s, 4096, 1024) for i, s in enumerate(shares)}) as r:
        assert r.read(0, 10) == b""
    with reader()[0] as r:
        assert r.read(len(DATA) - 3, 100) == DATA[-3:]
        with pytest.raises(ParameterError):
            r.read(-1, 5)


def test_version_1_is_not_seekable() -> None:
    from dataclasses import replace

    result, shares, key = encode(DATA[:5000], replace(LAYOUT, version=1))
    with pytest.raises(NotSeekable):
        RangeReader(result.manifest, key, {i: MemoryShareSource(s, 4096, 1024) for i, s in enumerate(shares)})
