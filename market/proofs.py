"""Building storage proofs the StorageMarket contract accepts (leaf -> share root -> commitment root)."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.models import StorageProof
from erasure import merkle


def storage_proof(
    *,
    deal_id: int,
    share_index: int,
    epoch: int,
    leaf_index: int,
    share_tree: merkle.MerkleTree,
    share: bytes | memoryview,
    share_roots: Sequence[bytes],
) -> StorageProof:
    """The proof that leaf ``leaf_index`` of share ``share_index`` is committed under the dataset's
    commitment root. ``share_tree`` is the share's Merkle tree (reused across epochs)."""
    leaf_size = share_tree.leaf_size
    leaf = bytes(memoryview(share)[leaf_index * leaf_size : (leaf_index + 1) * leaf_size])
    leaf_proof = share_tree.prove(leaf_index)
    commitment_tree = merkle.MerkleTree(b"".join(share_roots), merkle.HASH_SIZE)
    share_proof = commitment_tree.prove(share_index)
    return StorageProof(
        deal_id=deal_id,
        share_index=share_index,
        epoch=epoch,
        leaf=leaf,
        leaf_proof=leaf_proof.siblings,
        share_root=share_roots[share_index],
        share_proof=share_proof.siblings,
    )
