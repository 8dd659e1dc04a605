"""Key pieces for guardians: commitments, sealing to a guardian, sealing to a buyer.

    owner:    pieces = shamir.split(key, t, m); commitment_i = commit(dataset, epoch, i, piece_i)
              sealed_i = seal_to_guardian(piece_i, guardian_i's X25519 key)   (PyNaCl sealed box)
              -> KeyGuardians.setGuardians(dataset, guardians, t, commitments, sealed, feeBps)
    guardian: piece = open_from_owner(sealed_i, its X25519 secret); checks commit(...) on-chain
              R = r*G, c = piece XOR piece_mask(r*B, ctx, i) -> LicenseManager.deliverKeyPiece
    buyer:    piece = c XOR piece_mask(b*R, ctx, i), checked against commitment_i; t good pieces
              -> shamir.combine -> checked against the dataset's key commitment

``commit = sha256(abi.encode(PIECE_COMMITMENT_TAG, datasetId, epoch, index, piece))`` and
``piece_mask = keccak256(abi.encode(PIECE_DELIVERY_TAG, chainid, LicenseManager, licenseId, index,
S.x, S.y))``: the same bytes as ``KeyGuardians.pieceCommitment`` and ``LicenseManager.pieceMask``.
A piece is a uniformly random field element (for t >= 2), so its commitment needs no salt.
"""

from __future__ import annotations

import hashlib

from eth_utils.crypto import keccak
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from . import delivery
from .shamir import SIZE, Piece, SharingError

PIECE_COMMITMENT_TAG = keccak(b"datasov/key-piece-commitment/v1")
PIECE_DELIVERY_TAG = keccak(b"datasov/key-piece-delivery/v1")
GUARDIAN_KEY_SIZE = 32
SEALED_TO_GUARDIAN_SIZE = SIZE + 48  # ephemeral X25519 key + Poly1305 tag


class PieceError(SharingError):
    """A sealed piece could not be opened, or did not match its commitment."""


def _u256(n: int) -> bytes:
    return n.to_bytes(32, "big")


def commit(dataset_id: int, epoch: int, piece: Piece) -> bytes:
    """The on-chain commitment to one piece of one polynomial (epoch) of one dataset."""
    return hashlib.sha256(
        PIECE_COMMITMENT_TAG + _u256(dataset_id) + _u256(epoch) + _u256(piece.index) + piece.value
    ).digest()


def seal_to_guardian(piece: Piece, guardian_key: bytes) -> bytes:
    """The piece's 32 bytes in a sealed box to the guardian's X25519 public key."""
    if len(guardian_key) != GUARDIAN_KEY_SIZE:
        raise PieceError(f"a guardian key is {GUARDIAN_KEY_SIZE} bytes")
    return bytes(SealedBox(PublicKey(guardian_key)).encrypt(piece.value))


def open_from_owner(sealed: bytes, index: int, secret: PrivateKey) -> Piece:
    """A guardian opens the piece the owner sealed to it (check it with :func:`commit` next)."""
    try:
        return Piece(index, bytes(SealedBox(secret).decrypt(sealed)))
    except (CryptoError, SharingError) as err:
        raise PieceError(f"piece {index} does not open with this guardian key") from err


def piece_mask(shared: bytes, ctx: delivery.Context, index: int) -> bytes:
    address = bytes.fromhex(ctx.license_manager.removeprefix("0x"))
    if len(address) != 20:
        raise PieceError(f"{ctx.license_manager} is not an address")
    return keccak(
        PIECE_DELIVERY_TAG + _u256(ctx.chain_id) + bytes(12) + address + _u256(ctx.license_id) + _u256(index) + shared
    )


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def seal_to_buyer(piece: Piece, buyer_key: bytes, ctx: delivery.Context) -> delivery.Sealed:
    """A guardian's delivery of its piece for one license: (R, piece XOR mask(r*B))."""
    r = delivery.new_secret()
    shared = delivery._mul(buyer_key, r)
    return delivery.Sealed(delivery.public_key(r), _xor(piece.value, piece_mask(shared, ctx, piece.index)))


def open_delivered(sealed: delivery.Sealed, index: int, secret: int, ctx: delivery.Context) -> bytes:
    """The 32 bytes a piece delivery carries for the buyer (unchecked: compare with :func:`commit`)."""
    delivery._check_secret(secret)
    if len(sealed.cipher) != SIZE:
        raise PieceError(f"a sealed piece is {SIZE} bytes")
    return _xor(sealed.cipher, piece_mask(delivery._mul(sealed.point, secret), ctx, index))


def checked_piece(raw: bytes, index: int, dataset_id: int, epoch: int, commitment: bytes) -> Piece | None:
    """The piece if ``raw`` is a field element matching ``commitment``, else None."""
    try:
        piece = Piece(index, raw)
    except SharingError:
        return None
    return piece if commit(dataset_id, epoch, piece) == commitment else None
