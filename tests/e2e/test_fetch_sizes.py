"""Publish and fetch over the loopback network at sizes on every layout boundary.

The local pipeline roundtrip is not enough: the network path reads shares in ranges (the buyer's
read-ahead windows, the node's range reads), and the last segment's block is shorter than the rest.
"""

from __future__ import annotations

import filecmp
import hashlib
from pathlib import Path

import pytest

from contracts.terms import Purpose
from datasov.devnet import LocalNetwork
from erasure import envelope
from erasure.pipeline import Layout
from market import buyer
from market.keystore import Keystore
from storage_node.client import NodeClient

from .conftest import LAYOUT, Publish


def _data(size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


async def _publish_and_fetch(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, path: Path, size: int, layout: Layout
) -> Path:
    offer = await publish(path, layout=layout)
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()
    out = path.with_suffix(".fetched")
    report = await buyer.fetch(net.chain, lab, net.directory, client, license_id, out)
    assert not report.excluded
    assert report.bytes_written == size
    return out


@pytest.mark.asyncio
async def test_default_layout_fetches_a_dataset_whose_last_block_straddles_a_readahead_window(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    # 3,277,312 bytes, 4-of-10, 256 KiB blocks: the last segment's block (32,913 bytes) starts
    # 259,824 bytes into a read-ahead window sized from that short block, past the window's end
    path = tmp_path / "boundary.bin"
    path.write_bytes(_data(3_277_312))
    out = await _publish_and_fetch(net, lab, client, publish, path, 3_277_312, LAYOUT)
    assert filecmp.cmp(path, out, shallow=False)


# A small layout so every boundary is a few KiB away: 3-of-5, 4 KiB blocks of four 1 KiB leaves,
# 5,000-byte messages (not aligned with segments), read-ahead windows of 8 segments.
SMALL = Layout(k=3, n=5, block_size=4096, leaf_size=1024, message_size=5000)
READAHEAD = 8


def _plaintext_for(ciphertext: int, layout: Layout) -> int | None:
    """The plaintext size whose ciphertext is exactly ``ciphertext`` bytes, if there is one."""
    try:
        return envelope.plaintext_size_of(ciphertext, layout.message_size)
    except ValueError:
        return None


def boundary_sizes(layout: Layout, readahead: int = READAHEAD) -> list[int]:
    """Plaintext sizes on and one byte either side of the boundaries of ``layout``: messages,
    segments (the first one, and a read-ahead window's edge), and the last block's size on leaf
    and block edges, with the last segment in the second, the last and the first slot of a window."""
    k, block, leaf, segment = layout.k, layout.block_size, layout.leaf_size, layout.k * layout.block_size
    sizes = {0, 1, 2 * layout.message_size}
    sizes |= {layout.message_size + d for d in (-1, 0, 1)}
    ciphertexts = {segment + d for d in (-1, 0, 1)} | {readahead * segment + d for d in (0, 1)}
    for full_segments in (1, readahead - 1, readahead):
        ciphertexts.add(full_segments * segment + k * leaf + 1)  # the smallest last block over a leaf
        for last_block in (1, leaf, leaf + 1, block - 1):
            ciphertexts.add(full_segments * segment + k * last_block)
    sizes |= {p for c in ciphertexts if (p := _plaintext_for(c, layout)) is not None}
    return sorted(sizes)


def test_boundary_sizes_cover_every_edge() -> None:
    sizes = boundary_sizes(SMALL)
    cipher = {envelope.ciphertext_size(p, SMALL.message_size) for p in sizes}
    segment = SMALL.k * SMALL.block_size
    assert {segment - 1, segment, segment + 1, READAHEAD * segment} <= cipher
    last_blocks = {-(-(c % segment or segment) // SMALL.k) for c in cipher}
    assert {1, SMALL.leaf_size, SMALL.leaf_size + 1, SMALL.block_size} <= last_blocks
    assert {SMALL.message_size - 1, SMALL.message_size, SMALL.message_size + 1} <= set(sizes)


@pytest.mark.asyncio
@pytest.mark.parametrize("size", boundary_sizes(SMALL))
async def test_publish_and_fetch_at_every_layout_boundary(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path, size: int
) -> None:
    path = tmp_path / f"size-{size}.bin"
    path.write_bytes(_data(size))
    out = await _publish_and_fetch(net, lab, client, publish, path, size, SMALL)
    assert filecmp.cmp(path, out, shallow=False)


# The same small layout with whole AEAD messages per segment (3 of 4,096 bytes): fetched by
# streaming the systematic shares (market.stream_fetch), which writes segment by segment in place.
ALIGNED = Layout(k=3, n=5, block_size=4096, leaf_size=1024, message_size=4096 - 16)
ALIGNED_SIZES = [0, 1, 4080, 3 * 4080, 3 * 4080 + 1, 8 * 3 * 4080 + 4081]


@pytest.mark.asyncio
@pytest.mark.parametrize("size", ALIGNED_SIZES)
async def test_a_streamed_fetch_at_the_aligned_layout_boundaries(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path, size: int
) -> None:
    path = tmp_path / f"aligned-{size}.bin"
    path.write_bytes(_data(size))
    out = await _publish_and_fetch(net, lab, client, publish, path, size, ALIGNED)
    assert filecmp.cmp(path, out, shallow=False)
