"""SHA-256 Merkle trees: the one definition shared by Python, C and Solidity.

- leaf = SHA256(0x00 || leaf bytes); node = SHA256(0x01 || left || right)
- an odd node at the end of a level moves up unchanged
- data is cut into ``leaf_size`` leaves; the last leaf may be short; empty data is one empty leaf
- the commitment root of a dataset is the same tree over its n share roots taken as 32-byte leaves

A node at level ``j`` and index ``p`` always covers leaves ``[p * 2**j, min((p + 1) * 2**j, N))``,
so a block of ``2**j`` leaves that starts on a multiple of ``2**j`` has its own subtree root, and the
tree over those block roots (nodes only, no leaf tag) is the root of the whole share. The pipeline
uses this to verify each block of a share on its own.

The engine is the C core ``erasure._merkle`` (AVX-512, SHA-NI or portable C kernels: CPUID says
which can run, a short timing at import picks the fastest; ``_core.kernels()`` lists them in that
measured order) when it was built, else the pure-Python engine (:mod:`erasure.merkle_python`, also the
reference the kernels are tested against). ``BACKEND`` names the active one ("avx512", "shani", "portable" or
"python"); ``DATASOV_MERKLE_BACKEND`` forces one (tests, benchmarks).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import IntegrityError, ParameterError
from .merkle_python import HASH_SIZE as HASH_SIZE
from .merkle_python import ByteLike, next_level, path_shape
from .merkle_python import leaf_hash as leaf_hash
from .merkle_python import leaf_level as _py_leaf_level
from .merkle_python import level_up as _py_level_up
from .merkle_python import node_hash as node_hash
from .merkle_python import root as _py_root
from .merkle_python import root_of_nodes as root_of_nodes

try:
    from . import _merkle as _core
except ImportError:  # the extension could not be built: pure Python
    _core = None  # type: ignore[assignment]


def _select_backend() -> str:
    wanted = os.environ.get("DATASOV_MERKLE_BACKEND", "").strip()
    if _core is None or wanted == "python":
        if wanted not in ("", "python"):
            raise ImportError(f"DATASOV_MERKLE_BACKEND={wanted} but the C Merkle core is not built")
        return "python"
    if wanted:
        try:
            _core.set_kernel(wanted)
        except ValueError as err:
            raise ImportError(f"DATASOV_MERKLE_BACKEND={wanted}: {err}") from err
    return str(_core.get_kernel())


BACKEND = _select_backend()
_C = BACKEND != "python"  # tests and benchmarks switch it off to run the pure-Python engine
DEFAULT_LEAF_SIZE = 1024


def _check_leaf_size(leaf_size: int) -> None:
    if leaf_size < 1:
        raise ParameterError(f"leaf_size must be >= 1, got {leaf_size}")


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """Inclusion proof of leaf ``index`` in a tree of ``leaf_count`` leaves.

    ``siblings`` are listed bottom-up; levels where the path node was promoted (no sibling)
    contribute nothing, which is why the verifier needs ``leaf_count``.
    """

    index: int
    leaf_count: int
    siblings: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "leaf_count": self.leaf_count,
            "siblings": [s.hex() for s in self.siblings],
        }

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> MerkleProof:
        index, count, siblings = obj["index"], obj["leaf_count"], obj["siblings"]
        if not isinstance(index, int) or not isinstance(count, int) or not isinstance(siblings, list):
            raise ParameterError("malformed Merkle proof")
        return cls(index, count, tuple(bytes.fromhex(str(s)) for s in siblings))


def root_from_proof(leaf_digest: bytes, proof: MerkleProof) -> bytes | None:
    """Recompute the root from a leaf's digest and its proof; None if the proof is malformed."""
    if not 0 <= proof.index < proof.leaf_count:
        return None
    shape = path_shape(proof.index, proof.leaf_count)
    if sum(s is not None for s in shape) != len(proof.siblings):
        return None
    acc = leaf_digest
    siblings = iter(proof.siblings)
    for side in shape:
        if side is None:
            continue
        sib = next(siblings)
        if len(sib) != HASH_SIZE:
            return None
        acc = node_hash(sib, acc) if side else node_hash(acc, sib)
    return acc


def verify_proof(root: bytes, leaf: ByteLike, proof: MerkleProof) -> bool:
    """True if ``leaf`` (the leaf's bytes) sits at ``proof.index`` under ``root``."""
    return root_from_proof(leaf_hash(leaf), proof) == root


def root(data: ByteLike, leaf_size: int = DEFAULT_LEAF_SIZE, threads: int = 1) -> bytes:
    """Merkle root of ``data`` without keeping the tree (the fast path for whole shares)."""
    _check_leaf_size(leaf_size)
    if _C:
        return bytes(_core.root(data, leaf_size, threads))
    return _py_root(data, leaf_size)


class MerkleTree:
    """A whole tree held in memory (32 bytes per leaf and per inner node), for roots and proofs.

    ``data`` is cut into ``leaf_size`` leaves; ``threads`` > 1 hashes large trees on several
    cores. For streaming use :class:`MerkleBuilder`; for a root alone, :func:`root`.
    """

    __slots__ = ("_levels", "leaf_size")

    def __init__(self, data: ByteLike, leaf_size: int = DEFAULT_LEAF_SIZE, threads: int = 1) -> None:
        _check_leaf_size(leaf_size)
        self.leaf_size = leaf_size
        view = memoryview(data).cast("B")
        level = bytes(_core.leaf_digests(view, leaf_size, threads)) if _C else _py_leaf_level(view, leaf_size)
        self._levels = [level]
        while len(level) > HASH_SIZE:
            level = bytes(_core.level_up(level, threads)) if _C else _py_level_up(level)
            self._levels.append(level)

    @property
    def root(self) -> bytes:
        return self._levels[-1]

    @property
    def leaf_count(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    @property
    def leaf_level(self) -> bytes:
        """The leaf digests, 32 bytes each, concatenated."""
        return self._levels[0]

    def prove(self, index: int) -> MerkleProof:
        """Proof for leaf ``index``; raises :class:`ParameterError` if out of range."""
        if not 0 <= index < self.leaf_count:
            raise ParameterError(f"leaf index {index} out of range [0, {self.leaf_count})")
        siblings: list[bytes] = []
        i = index
        for level in self._levels[:-1]:
            width = len(level) // HASH_SIZE
            j = i - 1 if i % 2 else i + 1
            if j < width:
                siblings.append(level[j * HASH_SIZE : (j + 1) * HASH_SIZE])
            i //= 2
        return MerkleProof(index, self.leaf_count, tuple(siblings))

    def prove_many(self, indices: Iterable[int]) -> list[MerkleProof]:
        return [self.prove(i) for i in indices]


def verify_many(root: bytes, leaves: Sequence[ByteLike], proofs: Sequence[MerkleProof]) -> list[bool]:
    """Verify many proofs against one root (in C when available); one bool per proof."""
    if len(leaves) != len(proofs):
        raise ParameterError("need one leaf per proof")
    if not proofs:
        return []
    counts = {p.leaf_count for p in proofs}
    if not _C or len(counts) != 1 or len(root) != HASH_SIZE:
        return [verify_proof(root, leaf, p) for leaf, p in zip(leaves, proofs, strict=True)]
    digests = b"".join(leaf_hash(leaf) for leaf in leaves)
    if any(len(s) != HASH_SIZE for p in proofs for s in p.siblings):
        return [verify_proof(root, leaf, p) for leaf, p in zip(leaves, proofs, strict=True)]
    return verify_digests(root, counts.pop(), digests, [p.index for p in proofs], proofs)


def verify_digests(
    root: bytes, leaf_count: int, digests: bytes, indices: Sequence[int], proofs: Sequence[MerkleProof]
) -> list[bool]:
    """Batch verification in C from leaf digests (``len(digests) == 32 * len(proofs)``)."""
    if not _C:
        raise ParameterError("verify_digests needs the C Merkle core")
    if not 0 < leaf_count < 2**64:
        return [False] * len(indices)
    in_range = [0 <= i < leaf_count for i in indices]
    idx = struct.pack(f"<{len(indices)}Q", *(i if ok else 0 for i, ok in zip(indices, in_range, strict=True)))
    depths = struct.pack(f"<{len(proofs)}I", *(len(p.siblings) for p in proofs))
    sib = b"".join(s for p in proofs for s in p.siblings)
    flags = _core.verify_many(root, leaf_count, digests, idx, sib, depths)
    return [bool(f) and ok for f, ok in zip(flags, in_range, strict=True)]


class NodeAccumulator:
    """Builds the root over a stream of nodes fed left to right, in O(log n) memory."""

    __slots__ = ("_count", "_stack")

    def __init__(self) -> None:
        # _stack[i] is the root of a perfect subtree; sizes strictly decrease along the stack.
        self._stack: list[tuple[int, bytes]] = []
        self._count = 0

    @property
    def count(self) -> int:
        return self._count

    def add(self, node: bytes) -> None:
        self.add_subtree(node, 0)

    def add_subtree(self, node: bytes, level: int) -> None:
        """Add the root of a perfect subtree of ``2**level`` nodes; the count so far must be a
        multiple of ``2**level`` (it then sits where those nodes would)."""
        if self._count % (1 << level):
            raise ParameterError(f"a subtree of 2**{level} nodes cannot start at {self._count}")
        if self._stack and self._stack[-1][0] < level:
            raise ParameterError("subtree larger than the pending right edge")
        self._count += 1 << level
        acc = node
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            acc = node_hash(left, acc)
            level += 1
        self._stack.append((level, acc))

    def copy(self) -> NodeAccumulator:
        other = NodeAccumulator()
        other._stack = list(self._stack)
        other._count = self._count
        return other

    def root(self) -> bytes:
        """Root of everything added so far (promotion of the odd right edge, as in MerkleTree)."""
        if not self._stack:
            raise ParameterError("no nodes added")
        acc = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            acc = node_hash(left, acc)
        return acc


class MerkleBuilder:
    """Incremental tree over a byte stream: ``update()`` as data arrives, then ``root()``.

    Holds at most one partial leaf plus O(log n) hashes, and gives the same root as
    ``MerkleTree(all_data, leaf_size).root``.
    """

    __slots__ = ("_acc", "_pending", "leaf_size")

    def __init__(self, leaf_size: int = DEFAULT_LEAF_SIZE) -> None:
        _check_leaf_size(leaf_size)
        self.leaf_size = leaf_size
        self._acc = NodeAccumulator()
        self._pending = bytearray()

    @property
    def leaf_count(self) -> int:
        return max(1, self._acc.count + (1 if self._pending else 0))

    def update(self, data: ByteLike) -> None:
        view = memoryview(data).cast("B")
        size = self.leaf_size
        if self._pending:
            take = min(size - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < size:
                return
            self._acc.add(leaf_hash(self._pending))
            self._pending.clear()
        full_leaves = len(view) // size
        done = 0
        while done < full_leaves:
            # the largest aligned perfect subtree that fits: one C call hashes it whole
            count = self._acc.count
            level = (count & -count).bit_length() - 1 if count else 62
            while (1 << level) > full_leaves - done:
                level -= 1
            chunk = view[done * size : (done + (1 << level)) * size]
            self._acc.add_subtree(root(chunk, size) if level else leaf_hash(chunk), level)
            done += 1 << level
        self._pending += view[full_leaves * size :]

    def add_leaf(self, leaf: ByteLike) -> None:
        """Add one whole leaf (must be ``leaf_size`` bytes except for the very last one)."""
        if self._pending:
            raise ParameterError("a short leaf was already added; it must be the last")
        if len(leaf) > self.leaf_size:
            raise ParameterError(f"leaf of {len(leaf)} bytes exceeds leaf_size {self.leaf_size}")
        if len(leaf) == self.leaf_size:
            self._acc.add(leaf_hash(leaf))
        else:
            self._pending += leaf

    def root(self) -> bytes:
        if self._pending or self._acc.count == 0:
            acc = self._acc.copy()
            acc.add(leaf_hash(self._pending))
            return acc.root()
        return self._acc.root()


def node_proof(nodes: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """Siblings (bottom-up) of node ``index`` in the tree whose lowest level is ``nodes``.

    With ``nodes`` the block roots of a share, this is the upper part of a leaf's proof: the
    siblings inside its block followed by these give ``MerkleTree(share).prove(leaf).siblings``.
    """
    if not 0 <= index < len(nodes):
        raise ParameterError(f"node index {index} out of range [0, {len(nodes)})")
    level, siblings = list(nodes), []
    while len(level) > 1:
        j = index - 1 if index % 2 else index + 1
        if j < len(level):
            siblings.append(level[j])
        level, index = next_level(level), index // 2
    return tuple(siblings)


def commitment_root(share_roots: Sequence[bytes]) -> bytes:
    """Merkle root over the n share roots, each taken as one 32-byte leaf."""
    if not share_roots:
        raise ParameterError("commitment_root needs at least one share root")
    for r in share_roots:
        if len(r) != HASH_SIZE:
            raise ParameterError(f"share root must be {HASH_SIZE} bytes, got {len(r)}")
    return root(b"".join(share_roots), HASH_SIZE)


def block_roots(share: ByteLike, block_size: int, leaf_size: int) -> list[bytes]:
    """Subtree roots of each ``block_size`` block of a share (``block_size`` = leaf_size * 2**j)."""
    check_block_layout(block_size, leaf_size)
    view = memoryview(share).cast("B")
    if _C:
        packed = _core.roots_of_blocks(view, block_size, leaf_size)
        return [packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE)]
    if len(view) == 0:
        return [leaf_hash(b"")]
    return [root(view[i : i + block_size], leaf_size) for i in range(0, len(view), block_size)]


def check_block_layout(block_size: int, leaf_size: int) -> None:
    """Blocks must be a power-of-two number of leaves so each block is one aligned subtree."""
    _check_leaf_size(leaf_size)
    leaves = block_size // leaf_size
    if block_size % leaf_size or leaves < 1 or leaves & (leaves - 1):
        raise ParameterError(f"block_size {block_size} must be leaf_size {leaf_size} times a power of two")


def verify_block_roots(share_root: bytes, roots: Sequence[bytes], *, share: int | None = None) -> None:
    """Check a claimed list of block roots against the committed share root."""
    if not roots or any(len(r) != HASH_SIZE for r in roots) or root_of_nodes(roots) != share_root:
        raise IntegrityError("block roots do not hash to the committed share root", share=share)
