"""Every peer of a Kademlia network, by walking its key space prefix by prefix.

One lookup for a key returns the ``k`` peers closest to it (XOR of SHA-256 hashes, as py-libp2p
measures). Ordered by XOR distance to a target whose hash starts with the bits ``p``, every peer
whose hash starts with ``p`` comes before every peer whose hash does not. So a lookup whose answer
holds fewer than ``k`` peers inside ``p`` has seen all of them (as far as the lookup is right); one
holding ``split_at`` or more may have missed some, and the walk goes on into ``p0`` and ``p1``.
Over ``N`` peers that is about ``4 N / k`` lookups, ``log2(N / k)`` rounds deep, siblings at once.

Why this and not the providers of one well-known key (what ``find_nodes`` did first): a provider
lookup stops at ``k`` = 20 providers, and providers are kept by the 20 peers closest to the key,
so a client saw 20 providers plus its own routing table: 36 of 64 nodes in ``bench.network``.

A target with a given hash prefix is found by trying counters (``2**depth`` hashes on average;
:data:`MAX_DEPTH` bounds it); targets are sha2-256-multihash-shaped, 34 bytes, which py-libp2p's
FIND_NODE handler accepts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from functools import lru_cache
from itertools import count

import trio
from libp2p.peer.id import ID

MAX_DEPTH = 14  # bits: up to ~16k hashes to grind a target; covers networks of k * 2**14 peers
TARGET_TAG = b"datasov/walk-target/v1\x00"
Lookup = Callable[[bytes], Awaitable[Iterable[ID]]]


def key_bits(data: bytes, n: int) -> str:
    """The first ``n`` bits of ``sha256(data)`` as a string of 0 and 1 (py-libp2p's key space)."""
    digest = int.from_bytes(hashlib.sha256(data).digest(), "big")
    return format(digest >> (256 - n), f"0{n}b") if n else ""


@lru_cache(maxsize=4096)
def target_with_prefix(prefix: str) -> bytes:
    """A lookup key (a sha2-256 multihash) whose SHA-256 starts with the bits ``prefix``."""
    if len(prefix) > MAX_DEPTH or set(prefix) - {"0", "1"}:
        raise ValueError(f"not a bit prefix of at most {MAX_DEPTH} bits: {prefix!r}")
    for i in count():
        key = b"\x12\x20" + hashlib.sha256(TARGET_TAG + i.to_bytes(8, "big")).digest()
        if key_bits(key, len(prefix)) == prefix:
            return key
    raise AssertionError("unreachable")


async def walk(lookup: Lookup, *, k: int = 20, split_at: int | None = None) -> set[ID]:
    """Every peer ``lookup`` can reach: lookups for targets under ever longer prefixes (see above).

    ``split_at`` (default ``3 k / 4``): a prefix is split when a lookup returns at least this many
    peers inside it; below ``k`` is a margin for lookups that miss a peer or two.
    """
    threshold = max(1, (3 * k) // 4 if split_at is None else split_at)
    found: set[ID] = set()

    async def visit(prefix: str) -> None:
        peers = list(await lookup(target_with_prefix(prefix)))
        found.update(peers)
        inside = sum(key_bits(p.to_bytes(), len(prefix)) == prefix for p in peers)
        if inside >= threshold and len(prefix) < MAX_DEPTH:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(visit, prefix + "0")
                nursery.start_soon(visit, prefix + "1")

    await visit("")
    return found
