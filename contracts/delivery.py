"""Verifiable key delivery on BN254 (alt_bn128 G1), the Python half of ``LicenseManager``.

    buyer:  b random in [1, n), B = b*G          -> purchase(..., B)   (b kept in the keystore)
    owner:  r random,  R = r*G, S = r*B           -> deliverKey(R, c),  c = key XOR mask(S)
    buyer:  S = b*R, key = c XOR mask(S), checked against the on-chain key commitment;
            wrong -> dispute(b, R, c): the contract redoes exactly this and refunds the buyer

``mask(S) = keccak256(abi.encode(DELIVERY_TAG, chain id, LicenseManager, license id, S.x, S.y))``,
the same bytes as ``LicenseManager.deliveryMask``. Points travel as 64 bytes (x || y, big-endian);
every point from outside goes through :func:`check_point` first: G1 has prime order, so a
point that is on the curve and not infinity is safe to multiply (no small subgroups).

Errors: :class:`InvalidPoint` (a :class:`DeliveryError`) for a malformed point or secret.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from eth_utils.crypto import keccak

from .errors import ContractsError

# BN254's field prime and group order (py_ecc's field_modulus and curve_order; a test checks they are
# equal): py_ecc is imported by the multiplications only, so reading licenses does not import it
P = 21888242871839275222246405745257275088696311157297823662689037894645226208583
N = 21888242871839275222246405745257275088548364400416034343698204186575808495617
POINT_SIZE = 64
KEY_SIZE = 32
DELIVERY_TAG = keccak(b"datasov/key-delivery/v1")


class DeliveryError(ContractsError):
    """A key delivery could not be made or opened."""


class InvalidPoint(DeliveryError, ValueError):
    """Not the 64-byte encoding of a finite BN254 G1 point (or not a valid secret scalar)."""


@dataclass(frozen=True, slots=True)
class Context:
    """What a delivery is bound to: one license of one LicenseManager on one chain."""

    chain_id: int
    license_manager: str
    license_id: int


@dataclass(frozen=True, slots=True)
class Sealed:
    """A delivery: ``point`` = R (64 bytes), ``cipher`` = key XOR mask (32 bytes)."""

    point: bytes
    cipher: bytes

    def to_abi(self) -> tuple[tuple[int, int], bytes]:
        x, y = check_point(self.point)
        return (x, y), self.cipher


def check_point(point: bytes) -> tuple[int, int]:
    """The affine coordinates of a finite G1 point; raises :class:`InvalidPoint` otherwise."""
    if not isinstance(point, bytes | bytearray) or len(point) != POINT_SIZE:
        raise InvalidPoint(f"a BN254 point is {POINT_SIZE} bytes")
    x, y = int.from_bytes(point[:32], "big"), int.from_bytes(point[32:], "big")
    if x >= P or y >= P or (x == 0 and y == 0) or (y * y - x * x * x - 3) % P:
        raise InvalidPoint("not a point of the BN254 G1 curve")
    return x, y


def encode_point(x: int, y: int) -> bytes:
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def _mul(point: bytes, scalar: int) -> bytes:
    from py_ecc.fields import optimized_bn128_FQ as FQ
    from py_ecc.optimized_bn128.optimized_curve import multiply, normalize

    x, y = check_point(point)
    rx, ry = normalize(multiply((FQ(x), FQ(y), FQ(1)), scalar))
    return encode_point(int(rx), int(ry))


def _check_secret(secret: int) -> None:
    if not 0 < secret < N:
        raise InvalidPoint("a delivery secret is an integer in [1, n)")


def new_secret() -> int:
    """A fresh secret scalar in [1, n)."""
    return 1 + secrets.randbelow(N - 1)


def public_key(secret: int) -> bytes:
    """secret * G, 64 bytes."""
    from py_ecc.optimized_bn128.optimized_curve import G1, multiply, normalize

    _check_secret(secret)
    x, y = normalize(multiply(G1, secret))
    return encode_point(int(x), int(y))


def key_hash(point: bytes) -> bytes:
    """keccak256(abi.encode(x, y)): what LicenseManager stores for a buyer key."""
    check_point(point)
    return keccak(point)


def mask(shared: bytes, ctx: Context) -> bytes:
    address = bytes.fromhex(ctx.license_manager.removeprefix("0x"))
    if len(address) != 20:
        raise DeliveryError(f"{ctx.license_manager} is not an address")
    return keccak(
        DELIVERY_TAG
        + ctx.chain_id.to_bytes(32, "big")
        + bytes(12)
        + address
        + ctx.license_id.to_bytes(32, "big")
        + shared
    )


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def seal(data_key: bytes, buyer_key: bytes, ctx: Context) -> Sealed:
    """Encrypt a 32-byte data key to a buyer's point for one license."""
    if len(data_key) != KEY_SIZE:
        raise DeliveryError(f"a data key is {KEY_SIZE} bytes")
    check_point(buyer_key)
    r = new_secret()
    return Sealed(public_key(r), _xor(data_key, mask(_mul(buyer_key, r), ctx)))


def open_sealed(sealed: Sealed, secret: int, ctx: Context) -> bytes:
    """The key a delivery carries for the holder of ``secret`` (unchecked: compare it with the
    dataset's key commitment). Raises :class:`InvalidPoint` if R is not a curve point."""
    _check_secret(secret)
    if len(sealed.cipher) != KEY_SIZE:
        raise DeliveryError(f"a sealed key is {KEY_SIZE} bytes")
    return _xor(sealed.cipher, mask(_mul(sealed.point, secret), ctx))
