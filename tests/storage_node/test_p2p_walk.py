"""The key-space walk (storage_node.p2p.walk) over a simulated Kademlia: exact k-closest lookups."""

from __future__ import annotations

import hashlib
from functools import partial

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from libp2p.peer.id import ID

from storage_node.p2p import walk


def peer(i: int) -> ID:
    return ID(b"\x00\x24" + hashlib.sha256(i.to_bytes(8, "big")).digest()[:34])


def distance(key: bytes, p: ID) -> int:
    a = int.from_bytes(hashlib.sha256(key).digest(), "big")
    return a ^ int.from_bytes(hashlib.sha256(p.to_bytes()).digest(), "big")


def lookup_over(peers: list[ID], k: int, calls: list[bytes]) -> walk.Lookup:
    async def lookup(key: bytes) -> list[ID]:
        calls.append(key)
        await trio.lowlevel.checkpoint()
        return sorted(peers, key=lambda p: distance(key, p))[:k]

    return lookup


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 300), k=st.sampled_from([4, 8, 20]), seed=st.integers(0, 10**6))
def test_the_walk_finds_every_peer_of_an_exact_dht(n: int, k: int, seed: int) -> None:
    peers = [peer(seed * 1000 + i) for i in range(n)]
    calls: list[bytes] = []
    found = trio.run(partial(walk.walk, lookup_over(peers, k, calls), k=k))
    assert found == set(peers)
    assert len(calls) <= 1 + 8 * n // k + 2  # about 4 n / k lookups, never a crawl of every peer


def test_a_target_has_the_prefix_it_is_asked_for_and_fits_find_node() -> None:
    for prefix in ("", "0", "1", "0110", "10101010101"):
        key = walk.target_with_prefix(prefix)
        assert walk.key_bits(key, len(prefix)) == prefix
        assert key[:2] == b"\x12\x20"
        assert len(key) == 34
    with pytest.raises(ValueError, match="bit prefix"):
        walk.target_with_prefix("0" * (walk.MAX_DEPTH + 1))
