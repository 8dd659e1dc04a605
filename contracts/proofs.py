"""The packed calldata of ``StorageMarket.proveStorage`` (one call proves one share or many).

Layout, big-endian, nothing ABI-encoded (the contract parses it in place, see its NatSpec)::

    epoch   uint32   the epoch every proof of the call is for (the current one)
    count   uint8    proofs that follow (1..255)
    per proof:
      deal_id      uint64
      share_index  uint16
      leaf         the challenged leaf, as long as the deal says that leaf is
      leaf_proof   32 bytes per sibling, leaf -> share root, bottom-up
      share_proof  32 bytes per sibling, share root -> commitment root, bottom-up

No lengths are sent: the contract knows the leaf's length and how many siblings each tree needs
from the deal (leaf size, leaf count, share count) and the challenged index, and refuses a call
whose data does not end exactly where the last proof does (``MalformedProofs``). The share root is
not sent either: it is what the leaf path computes. ``decode`` reads a single proof back (it needs
the deal's sizes), for tests and for anyone reading proofs out of chain history.
"""

from __future__ import annotations

from collections.abc import Sequence

from erasure import merkle

from .models import Deal, StorageProof

MAX_PROOFS = 255
HEAD = 5  # epoch + count
PROOF_HEAD = 10  # deal id + share index
EVENT_ENTRY = 10  # StorageProofs.shares: deal id (uint64) + share index (uint16) per proof


def encode(proofs: Sequence[StorageProof]) -> bytes:
    """The ``proveStorage`` argument for ``proofs`` (all of one epoch, 1 to 255 of them)."""
    if not 1 <= len(proofs) <= MAX_PROOFS:
        raise ValueError(f"a call holds 1 to {MAX_PROOFS} proofs, not {len(proofs)}")
    epoch = proofs[0].epoch
    parts = [epoch.to_bytes(4, "big"), len(proofs).to_bytes(1, "big")]
    for p in proofs:
        if p.epoch != epoch:
            raise ValueError(f"proofs of epochs {epoch} and {p.epoch} in one call")
        if not 0 <= p.deal_id < 1 << 64 or not 0 <= p.share_index < 1 << 16:
            raise ValueError(f"deal {p.deal_id} / share {p.share_index} out of the packed range")
        parts += [p.deal_id.to_bytes(8, "big"), p.share_index.to_bytes(2, "big"), p.leaf]
        parts += [bytes(s) for s in p.leaf_proof]
        parts += [bytes(s) for s in p.share_proof]
    return b"".join(parts)


def decode(data: bytes, deal: Deal, leaf_index: int) -> StorageProof:
    """The single proof in ``data`` (``encode([proof])``) of the challenged leaf ``leaf_index`` of
    ``deal`` (the layout has no lengths: the deal's sizes say them); its share root recomputed."""
    if len(data) < HEAD + PROOF_HEAD or data[4] != 1:
        raise ValueError("not a packed single proof")
    epoch = int.from_bytes(data[:4], "big")
    share_index = int.from_bytes(data[13:15], "big")
    at = HEAD + PROOF_HEAD
    length = deal.last_leaf_size if leaf_index == deal.leaf_count - 1 else deal.leaf_size
    leaf = data[at : at + length]
    leaf_path = _words(data, at + length, leaf_index, deal.leaf_count)
    at += length + 32 * len(leaf_path)
    share_path = _words(data, at, share_index, deal.n)
    if at + 32 * len(share_path) != len(data):
        raise ValueError("packed proof of the wrong length for its deal")
    share_root = merkle.root_from_proof(
        merkle.leaf_hash(leaf), merkle.MerkleProof(leaf_index, deal.leaf_count, leaf_path)
    )
    if share_root is None:
        raise ValueError(f"leaf {leaf_index} is not a leaf of deal {deal.deal_id}")
    deal_id = int.from_bytes(data[5:13], "big")
    return StorageProof(deal_id, share_index, epoch, leaf, leaf_path, share_root, share_path)


def proven_shares(shares: bytes) -> list[tuple[int, int]]:
    """(deal id, share index) of each proof a ``StorageProofs`` event lists."""
    return [
        (int.from_bytes(shares[i : i + 8], "big"), int.from_bytes(shares[i + 8 : i + 10], "big"))
        for i in range(0, len(shares) - len(shares) % EVENT_ENTRY, EVENT_ENTRY)
    ]


def _words(data: bytes, at: int, index: int, count: int) -> tuple[bytes, ...]:
    """The siblings of ``index``'s path in a tree of ``count`` leaves, read from ``data`` at ``at``."""
    need = 0
    while count > 1:  # an odd last node moves up without a sibling
        need += bool(index & 1 or index + 1 < count)
        index, count = index >> 1, (count + 1) >> 1
    return tuple(data[at + 32 * i : at + 32 * (i + 1)] for i in range(need))
