"""Shamir t-of-m secret sharing of a 32-byte data key over the prime field GF(P), P = 2^256 - 189.

    split(key, t, m)  -> m pieces (x = 1..m, y = f(x)), f a random polynomial of degree t-1, f(0) = key
    combine(pieces)   -> f(0) from any t of them (Lagrange at 0)

Why a prime field and our own 60 lines rather than a package: ``LicenseManager`` recombines the
pieces on-chain when a buyer disputes a guardian delivery (``mulmod`` and one modular inverse per
piece), which GF(2^8) (SLIP-39, ``shamir-mnemonic``) or GF(2^128) (pycryptodome's 16-byte
``SecretSharing``) would make a byte-by-byte loop in Solidity. P is the largest prime below 2^256,
so a piece is one ``bytes32``; a key >= P (probability 189 / 2^256) is refused
(:class:`KeyOutsideField`): the owner draws another key.

Secrecy: for t-1 or fewer pieces every value of f(0) is equally likely (the t-1 unknown
coefficients are uniform in GF(P)), so fewer than t pieces say nothing about the key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .errors import ContractsError

P = 2**256 - 189
MAX_PIECES = 32  # the contract keeps a dataset's guardians in a 32-bit set
SIZE = 32


class SharingError(ContractsError):
    """A key could not be split, or pieces could not be combined."""


class KeyOutsideField(SharingError, ValueError):
    """The key, read as a big-endian integer, is not below P."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One share: ``index`` in [1, MAX_PIECES] (the polynomial's x), ``value`` f(index) as 32 bytes."""

    index: int
    value: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.index <= MAX_PIECES:
            raise SharingError(f"a piece index is in [1, {MAX_PIECES}], not {self.index}")
        if len(self.value) != SIZE or int.from_bytes(self.value, "big") >= P:
            raise SharingError("a piece value is 32 bytes below P")

    def __repr__(self) -> str:  # never print piece bytes
        return f"Piece(index={self.index})"


def split(key: bytes, threshold: int, count: int) -> list[Piece]:
    """``count`` pieces of ``key``, any ``threshold`` of which recombine it."""
    if len(key) != SIZE:
        raise SharingError(f"a data key is {SIZE} bytes")
    secret = int.from_bytes(key, "big")
    if secret >= P:
        raise KeyOutsideField("this key is not below the field prime: draw another key")
    if not 1 <= threshold <= count <= MAX_PIECES:
        raise SharingError(f"need 1 <= threshold <= pieces <= {MAX_PIECES}, got {threshold}-of-{count}")
    coefficients = [secret] + [secrets.randbelow(P) for _ in range(threshold - 1)]
    return [Piece(x, _eval(coefficients, x).to_bytes(SIZE, "big")) for x in range(1, count + 1)]


def _eval(coefficients: list[int], x: int) -> int:
    y = 0
    for c in reversed(coefficients):
        y = (y * x + c) % P
    return y


def lagrange_at_zero(indices: list[int]) -> list[int]:
    """The coefficients l_i with f(0) = sum l_i f(x_i) for distinct x_i (what the contract computes)."""
    if len(set(indices)) != len(indices):
        raise SharingError("pieces to combine must have distinct indices")
    out = []
    for i in indices:
        num, den = 1, 1
        for j in indices:
            if j != i:
                num = num * j % P
                den = den * (j - i) % P
        out.append(num * pow(den, P - 2, P) % P)
    return out


def combine(pieces: list[Piece]) -> bytes:
    """f(0) from the given pieces (exactly the threshold's worth: more are fine if consistent)."""
    if not pieces:
        raise SharingError("no pieces to combine")
    weights = lagrange_at_zero([p.index for p in pieces])
    secret = sum(w * int.from_bytes(p.value, "big") for w, p in zip(weights, pieces, strict=True)) % P
    return secret.to_bytes(SIZE, "big")
