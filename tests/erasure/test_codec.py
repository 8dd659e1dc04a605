"""One conformance suite, run over every codec this machine has."""

import itertools
import math
import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure.codec import CODECS, available_codecs, get_codec
from erasure.errors import ParameterError

AVAILABLE = available_codecs()


def test_both_codecs_are_installed() -> None:
    # pyproject depends on zfec and pyeclib (whose wheel bundles ISA-L): both must load.
    assert list(CODECS) == AVAILABLE


@pytest.fixture(params=AVAILABLE, scope="module")
def codec_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize(("k", "n"), [(1, 2), (2, 3), (3, 10), (10, 30)])
def test_every_k_subset_decodes(codec_name: str, k: int, n: int) -> None:
    codec = get_codec(codec_name, k, n)
    segment = os.urandom(k * 64 + 5)
    blocks = codec.encode(segment)
    assert len(blocks) == n
    assert all(len(b) == codec.block_size(len(segment)) for b in blocks)
    if math.comb(n, k) <= 300:
        subsets = list(itertools.combinations(range(n), k))
    else:  # every share in every position at least once, plus the all-parity subset and random ones
        rng = random.Random(k * 1000 + n)
        subsets = [tuple(range(n - k, n)), *(tuple(sorted(rng.sample(range(n), k))) for _ in range(300))]
    for subset in subsets:
        assert codec.decode({i: blocks[i] for i in subset}, len(segment)) == segment


@given(size=st.integers(1, 5000), k=st.integers(1, 12), extra=st.integers(1, 12), seed=st.integers(0, 2**32))
def test_random_sizes_and_subsets(codec_name: str, size: int, k: int, extra: int, seed: int) -> None:
    rng = random.Random(seed)
    n = k + extra
    codec = get_codec(codec_name, k, n)
    segment = rng.randbytes(size)
    blocks = codec.encode(segment)
    chosen = rng.sample(range(n), k)
    assert codec.decode({i: blocks[i] for i in chosen}, size) == segment


def test_systematic_blocks_are_the_data(codec_name: str) -> None:
    codec = get_codec(codec_name, 4, 6)
    segment = os.urandom(4 * 1024)
    blocks = codec.encode(segment)
    assert b"".join(blocks[:4]) == segment


@pytest.mark.parametrize("length", [1, 7, 4 * 1024 - 1, 4 * 1024 + 1, 100_003])
def test_systematic_block_i_holds_bytes_i_times_block_size_on(codec_name: str, length: int) -> None:
    """What a verified partial read relies on (erasure.decoding.Decoder.segment_range): byte x of
    a segment is byte x % b of block x // b, b = block_size(L), for any L."""
    codec = get_codec(codec_name, 3, 5)
    segment = os.urandom(length)
    b = codec.block_size(length)
    assert b"".join(codec.encode(segment)[:3])[:length] == segment
    assert b * 3 >= length


@pytest.mark.parametrize(("k", "n"), [(0, 2), (3, 3), (5, 4), (1, 257), (-1, 3)])
def test_invalid_parameters(codec_name: str, k: int, n: int) -> None:
    with pytest.raises(ParameterError, match="1 <= k < n <= 256"):
        get_codec(codec_name, k, n)


def test_decode_refuses_bad_input(codec_name: str) -> None:
    codec = get_codec(codec_name, 3, 5)
    segment = os.urandom(300)
    blocks = codec.encode(segment)
    with pytest.raises(ParameterError, match="need 3"):
        codec.decode({0: blocks[0], 1: blocks[1]}, 300)
    with pytest.raises(ParameterError, match="out of range"):
        codec.decode({0: blocks[0], 1: blocks[1], 7: blocks[2]}, 300)
    with pytest.raises(ParameterError, match="bytes, expected"):
        codec.decode({0: blocks[0], 1: blocks[1], 2: blocks[2][:-1]}, 300)
    with pytest.raises(ParameterError):
        codec.encode(b"")


def test_unknown_codec() -> None:
    with pytest.raises(ParameterError, match="unknown codec"):
        get_codec("lz4", 2, 3)


def test_large_n(codec_name: str) -> None:
    codec = get_codec(codec_name, 100, 256)
    segment = os.urandom(100 * 32)
    blocks = codec.encode(segment)
    assert codec.decode({i: blocks[i] for i in range(156, 256)}, len(segment)) == segment
