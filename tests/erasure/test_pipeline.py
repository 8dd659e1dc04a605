"""Streaming encode/decode: sizes, codecs, per-segment subsets, corruption, truncation, wrong keys."""

from __future__ import annotations

import io
import os
import random
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import decoding, envelope, merkle, pipeline
from erasure import manifest as manifest_mod
from erasure.codec import available_codecs
from erasure.decoding import MemoryShareSource
from erasure.errors import DecryptionError, ManifestMismatch, NotEnoughShares, ParameterError
from erasure.manifest import Manifest
from erasure.pipeline import Layout

BLOCK = 4096
LEAF = 1024
MSG = 3000  # small AEAD messages: many messages per segment and across segment edges


def small_layout(codec: str = "zfec", k: int = 3, n: int = 7) -> Layout:
    return Layout(codec=codec, k=k, n=n, block_size=BLOCK, leaf_size=LEAF, message_size=MSG)


def encode(data: bytes, layout: Layout, chunk: int = 5000) -> tuple[Manifest, list[bytes], bytes, list[list[bytes]]]:
    key = envelope.new_data_key()
    sinks = [io.BytesIO() for _ in range(layout.n)]
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    result = pipeline.encode(chunks, sinks, key=key, layout=layout, threads=2)
    return result.manifest, [s.getvalue() for s in sinks], key, result.block_roots


def sources(man: Manifest, shares: Sequence[bytes], which: Sequence[int]) -> dict[int, MemoryShareSource]:
    return {i: MemoryShareSource(shares[i], man.block_size, man.leaf_size) for i in which}


def decode(man: Manifest, key: bytes, srcs: dict[int, pipeline.ShareSource]) -> bytes:
    return b"".join(decoding.decode(man, key, srcs, threads=2))


SEGMENT = 3 * BLOCK
SIZES = [0, 1, MSG - 1, MSG, SEGMENT - envelope.ABYTES * 5, SEGMENT, 4 * SEGMENT, 10 * SEGMENT + 77]


@pytest.mark.parametrize("codec", available_codecs())
@pytest.mark.parametrize("size", SIZES)
def test_round_trip_sizes(codec: str, size: int) -> None:
    data = os.urandom(size)
    man, shares, key, roots = encode(data, small_layout(codec))
    assert man.plaintext_size == size
    assert all(len(s) == man.share_size for s in shares)
    for i, share in enumerate(shares):
        assert merkle.MerkleTree(share, LEAF).root == man.share_roots[i]
        assert merkle.block_roots(share, BLOCK, LEAF) == roots[i]
    assert decode(man, key, sources(man, shares, range(7))) == data
    assert decode(man, key, sources(man, shares, [4, 5, 6])) == data


@settings(max_examples=25)
@given(
    size=st.integers(0, 6 * SEGMENT),
    k=st.integers(1, 5),
    extra=st.integers(1, 4),
    seed=st.integers(0, 2**30),
    codec=st.sampled_from(available_codecs()),
)
def test_any_k_shares_per_segment(size: int, k: int, extra: int, seed: int, codec: str) -> None:
    """Each segment sees a different set of readable shares; any k per segment suffice."""
    rng = random.Random(seed)
    data = rng.randbytes(size)
    layout = small_layout(codec, k, k + extra)
    man, shares, key, _ = encode(data, layout)
    readable = {s: set(rng.sample(range(layout.n), k)) for s in range(man.segment_count)}

    class Holey(MemoryShareSource):
        def __init__(self, index: int) -> None:
            super().__init__(shares[index], man.block_size, man.leaf_size)
            self.index = index

        def read_block(self, segment: int, offset: int, size: int) -> bytes:
            block = super().read_block(segment, offset, size)
            # a block this share can't serve for this segment comes back damaged
            return block if self.index in readable[segment] else bytes(len(block))

    srcs: dict[int, pipeline.ShareSource] = {i: Holey(i) for i in range(layout.n)}
    decoder = decoding.Decoder(man, key, srcs, threads=2)
    assert b"".join(decoder) == data


@settings(max_examples=30)
@given(share=st.integers(0, 6), pos=st.integers(0, 10**9), seed=st.integers(0, 2**30))
def test_any_corrupted_byte_is_detected_and_skipped(share: int, pos: int, seed: int) -> None:
    data = random.Random(seed).randbytes(5 * SEGMENT + 11)
    man, shares, key, _ = encode(data, small_layout())
    bad = bytearray(shares[share])
    bad[pos % len(bad)] ^= 0x5A
    damaged = list(shares)
    damaged[share] = bytes(bad)
    srcs: dict[int, pipeline.ShareSource] = {
        i: MemoryShareSource(damaged[i], BLOCK, LEAF, merkle.block_roots(shares[i], BLOCK, LEAF)) for i in range(7)
    }
    # the damaged share is read first so it must be noticed
    order = {share: srcs.pop(share)}
    order.update(srcs)
    decoder = decoding.Decoder(man, key, order, threads=2)
    assert b"".join(decoder) == data
    segment = (pos % len(bad)) // BLOCK
    assert [s for s, _ in decoder.report.bad_blocks.get(share, [])] == [segment]


def test_corrupt_block_roots_exclude_the_share() -> None:
    data = os.urandom(3 * SEGMENT)
    man, shares, key, roots = encode(data, small_layout())
    forged = [bytes(32), *roots[0][1:]]
    srcs: dict[int, pipeline.ShareSource] = {0: MemoryShareSource(shares[0], BLOCK, LEAF, forged)}
    srcs.update(sources(man, shares, [1, 2, 3]))
    decoder = decoding.Decoder(man, key, srcs)
    assert b"".join(decoder) == data
    assert 0 in decoder.report.excluded


def test_fewer_than_k_good_shares_is_a_clear_error() -> None:
    data = os.urandom(2 * SEGMENT)
    man, shares, key, _ = encode(data, small_layout())
    srcs = sources(man, shares, [0, 1])
    with pytest.raises(NotEnoughShares, match="need 3") as info:
        decode(man, key, dict(srcs))
    assert info.value.good == 2
    assert info.value.needed == 3
    corrupt = bytearray(shares[2])
    corrupt[BLOCK + 5] ^= 1  # segment 1 of share 2
    srcs3: dict[int, pipeline.ShareSource] = dict(srcs)
    srcs3[2] = MemoryShareSource(bytes(corrupt), BLOCK, LEAF, merkle.block_roots(shares[2], BLOCK, LEAF))
    with pytest.raises(NotEnoughShares) as info:
        decode(man, key, srcs3)
    assert info.value.segment == 1


def test_truncated_share_is_skipped_or_reported() -> None:
    data = os.urandom(4 * SEGMENT)
    man, shares, key, roots = encode(data, small_layout())
    short = MemoryShareSource(shares[0][: 2 * BLOCK + 100], BLOCK, LEAF, roots[0])
    srcs: dict[int, pipeline.ShareSource] = {0: short, **sources(man, shares, [4, 5, 6])}
    decoder = decoding.Decoder(man, key, srcs)
    assert b"".join(decoder) == data
    assert 0 in decoder.report.excluded
    assert decoder.report.blocks_used[0] == 2  # the segments it still had were used
    with pytest.raises(NotEnoughShares) as info:
        decode(man, key, {0: short, **sources(man, shares, [4, 5])})
    assert info.value.segment == 2


def test_wrong_key_is_refused_before_any_read() -> None:
    data = os.urandom(SEGMENT)
    man, shares, _key, _ = encode(data, small_layout())

    class Exploding(MemoryShareSource):
        def read_block(self, segment: int, offset: int, size: int) -> bytes:
            raise AssertionError("must not read with a wrong key")

    with pytest.raises(DecryptionError, match="key commitment"):
        decoding.Decoder(man, envelope.new_data_key(), {0: Exploding(shares[0], BLOCK, LEAF)})


def test_manifest_tampering() -> None:
    data = os.urandom(2 * SEGMENT + 5)
    man, shares, key, _ = encode(data, small_layout())
    # a forged header with a matching key commitment: decryption itself must fail
    forged = replace(man, encryption=replace(man.encryption, header=bytes(len(man.encryption.header))))
    with pytest.raises(DecryptionError):
        decode(forged, key, sources(man, shares, range(7)))
    # share roots swapped: every share is excluded, so no segment can be decoded
    swapped = replace(man, share_roots=tuple(reversed(man.share_roots)))
    with pytest.raises(NotEnoughShares):
        decode(swapped, key, sources(man, shares, range(7)))
    wrong_size = replace(man, share_size=man.share_size - 1)
    with pytest.raises(ManifestMismatch):
        decode(wrong_size, key, sources(man, shares, range(7)))


def test_plaintext_shorter_in_manifest_fails_decryption() -> None:
    data = os.urandom(3 * SEGMENT)
    man, shares, key, _ = encode(data, small_layout())
    cut = replace(
        man,
        ciphertext_size=man.ciphertext_size - MSG - man.tag_size,
        plaintext_size=man.plaintext_size - MSG,
    )
    with pytest.raises((DecryptionError, ManifestMismatch)):
        decode(cut, key, sources(man, shares, range(7)))


def test_bad_layouts() -> None:
    with pytest.raises(ParameterError):
        Layout(block_size=3000).make_codec()
    with pytest.raises(ParameterError):
        Layout(k=5, n=5).make_codec()
    with pytest.raises(ParameterError, match="sinks"):
        pipeline.encode([b"x"], [io.BytesIO()], key=envelope.new_data_key(), layout=small_layout())


class NullSink:
    def write(self, data: bytes) -> int:
        return len(data)


def _peak_encode(size: int) -> int:
    layout = Layout(block_size=64 * 1024, k=3, n=10)

    def gen() -> Iterator[bytes]:
        chunk = bytes(256 * 1024)
        for _ in range(size // len(chunk)):
            yield chunk

    tracemalloc.start()
    pipeline.encode(gen(), [NullSink() for _ in range(10)], key=envelope.new_data_key(), layout=layout, threads=2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_encode_memory_does_not_grow_with_input() -> None:
    small, large = _peak_encode(8 << 20), _peak_encode(48 << 20)
    assert large < 1.5 * small + (1 << 20), (small, large)
    assert large < 16 << 20


@pytest.mark.parametrize("version", [1, 2])
def test_both_format_versions_round_trip(version: int) -> None:
    data = os.urandom(2 * SEGMENT + 11)
    man, shares, key, _ = encode(data, replace(small_layout(), version=version))
    assert man.version == version
    assert man.encryption.scheme in (manifest_mod.SCHEMES_BY_VERSION[version])
    assert decode(manifest_mod.parse(man.canonical_bytes()), key, sources(man, shares, range(3, 7))) == data
