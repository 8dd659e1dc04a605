"""The pure-Python Merkle engine: the reference the C core (``erasure._merkle``) is checked against,
and the fallback :mod:`erasure.merkle` runs when the extension was not built or ``_C`` is off.

Same tree as :mod:`erasure.merkle` documents: leaf = SHA256(0x00 || leaf), node = SHA256(0x01 || left ||
right), an odd node at the end of a level moves up unchanged, empty data is one empty leaf. Levels are
passed as 32-byte digests (lists) or their concatenation (bytes), as the C core takes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .errors import ParameterError

LEAF_TAG = b"\x00"
NODE_TAG = b"\x01"
HASH_SIZE = 32

_sha256 = hashlib.sha256

ByteLike = bytes | bytearray | memoryview


def leaf_hash(leaf: ByteLike) -> bytes:
    """SHA256(0x00 || leaf)."""
    h = _sha256(LEAF_TAG)
    h.update(leaf)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA256(0x01 || left || right)."""
    return _sha256(NODE_TAG + left + right).digest()


def leaf_hashes(data: ByteLike, leaf_size: int) -> list[bytes]:
    """The digests of ``data`` cut into ``leaf_size`` leaves (one empty leaf for empty data)."""
    view = memoryview(data).cast("B")
    if len(view) == 0:
        return [leaf_hash(b"")]
    return [leaf_hash(view[i : i + leaf_size]) for i in range(0, len(view), leaf_size)]


def next_level(level: Sequence[bytes]) -> list[bytes]:
    """The level above ``level``: pairs hashed, an odd last node promoted."""
    up = [_sha256(NODE_TAG + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        up.append(level[-1])
    return up


def root_of_nodes(nodes: Sequence[bytes]) -> bytes:
    """Root of the tree whose lowest level is ``nodes`` (already hashed: no leaf tag is applied)."""
    if not nodes:
        raise ParameterError("root_of_nodes needs at least one node")
    level = list(nodes)
    while len(level) > 1:
        level = next_level(level)
    return level[0]


def leaf_level(view: memoryview, leaf_size: int) -> bytes:
    """:func:`leaf_hashes` concatenated (what ``_core.leaf_digests`` returns)."""
    return b"".join(leaf_hashes(view, leaf_size))


def level_up(level: bytes) -> bytes:
    """:func:`next_level` over concatenated digests (what ``_core.level_up`` returns)."""
    nodes = [level[i : i + HASH_SIZE] for i in range(0, len(level), HASH_SIZE)]
    return b"".join(next_level(nodes))


def root(data: ByteLike, leaf_size: int) -> bytes:
    """Merkle root of ``data`` in ``leaf_size`` leaves (``leaf_size`` already checked)."""
    return root_of_nodes(leaf_hashes(data, leaf_size))


def path_shape(index: int, leaf_count: int) -> list[bool | None]:
    """For each level bottom-up: True if the sibling is on the left, False if on the right,
    None if the node is promoted without a sibling."""
    shape: list[bool | None] = []
    width = leaf_count
    while width > 1:
        if index % 2:
            shape.append(True)
        elif index + 1 < width:
            shape.append(False)
        else:
            shape.append(None)
        index //= 2
        width = (width + 1) // 2
    return shape
