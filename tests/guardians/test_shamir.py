"""Shamir sharing of the data key and the piece formats (contracts.shamir, contracts.pieces)."""

from __future__ import annotations

import collections
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from contracts import delivery, pieces, shamir

keys = st.binary(min_size=32, max_size=32).filter(lambda k: int.from_bytes(k, "big") < shamir.P)


@st.composite
def shared(draw: st.DrawFn) -> tuple[bytes, int, list[shamir.Piece]]:
    key = draw(keys)
    m = draw(st.integers(1, 8))
    t = draw(st.integers(1, m))
    return key, t, shamir.split(key, t, m)


@settings(max_examples=60, deadline=None)
@given(shared(), st.randoms())
def test_any_t_pieces_combine_to_the_key(case: tuple[bytes, int, list[shamir.Piece]], rnd: object) -> None:
    key, t, ps = case
    chosen = rnd.sample(ps, t)  # type: ignore[attr-defined]
    assert shamir.combine(chosen) == key


@settings(max_examples=40, deadline=None)
@given(shared())
def test_t_minus_one_pieces_combine_to_something_else(case: tuple[bytes, int, list[shamir.Piece]]) -> None:
    key, t, ps = case
    if t >= 2:
        assert shamir.combine(ps[: t - 1]) != key or key == bytes(32)


def test_fewer_than_t_pieces_are_uniform_whatever_the_key() -> None:
    """2-of-3 over the field reduced mod a small prime is unusable for a distribution test, so test the
    statement itself on a one-byte image: the first piece's low byte is uniform and independent of the
    key (chi-square over 256 cells, two different keys)."""
    for key in (bytes(32), b"\xff" * 16 + bytes(16)):
        counts = collections.Counter(shamir.split(key, 2, 3)[0].value[-1] for _ in range(5120))
        expected = 5120 / 256
        chi2 = sum((counts.get(v, 0) - expected) ** 2 / expected for v in range(256))
        assert chi2 < 350, chi2  # 255 degrees of freedom: p < 1e-4 beyond 350


def test_every_subset_of_t_combines_and_order_does_not_matter() -> None:
    key = os.urandom(31).rjust(32, b"\0")
    ps = shamir.split(key, 3, 5)
    for subset in itertools.permutations(ps, 3):
        assert shamir.combine(list(subset)) == key


def test_bad_inputs_are_named_errors() -> None:
    with pytest.raises(shamir.KeyOutsideField):
        shamir.split(b"\xff" * 32, 2, 3)
    with pytest.raises(shamir.SharingError):
        shamir.split(bytes(32), 4, 3)
    with pytest.raises(shamir.SharingError):
        shamir.split(bytes(31), 1, 1)
    with pytest.raises(shamir.SharingError):
        shamir.combine([shamir.Piece(1, bytes(32)), shamir.Piece(1, bytes(32))])
    with pytest.raises(shamir.SharingError):
        shamir.Piece(0, bytes(32))
    assert "value" not in repr(shamir.Piece(1, b"\x01" * 32))


def test_the_field_prime_is_prime() -> None:
    p = shamir.P
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        assert pow(a, p - 1, p) == 1
    assert all(p % q for q in range(2, 10_000))


@settings(max_examples=30, deadline=None)
@given(shared(), st.integers(0, 2**32), st.integers(0, 2**32))
def test_commitments_detect_any_other_piece(case: tuple[bytes, int, list[shamir.Piece]], ds: int, epoch: int) -> None:
    _, _, ps = case
    for p in ps:
        c = pieces.commit(ds, epoch, p)
        assert pieces.checked_piece(p.value, p.index, ds, epoch, c) == p
        flipped = bytes([p.value[0] ^ 1]) + p.value[1:]
        assert pieces.checked_piece(flipped, p.index, ds, epoch, c) is None
        assert pieces.checked_piece(p.value, p.index, ds, epoch + 1, c) is None  # another polynomial
        assert pieces.checked_piece(p.value, p.index, ds + 1, epoch, c) is None  # another dataset
        if p.index < shamir.MAX_PIECES:
            assert pieces.checked_piece(p.value, p.index + 1, ds, epoch, c) is None


def test_sealing_to_guardian_and_to_buyer_round_trip() -> None:
    piece = shamir.split(os.urandom(31).rjust(32, b"\0"), 2, 3)[1]
    guardian = PrivateKey.generate()
    sealed = pieces.seal_to_guardian(piece, bytes(guardian.public_key))
    assert len(sealed) == pieces.SEALED_TO_GUARDIAN_SIZE
    assert pieces.open_from_owner(sealed, piece.index, guardian) == piece
    with pytest.raises(pieces.PieceError):
        pieces.open_from_owner(sealed, piece.index, PrivateKey.generate())
    b = delivery.new_secret()
    ctx = delivery.Context(1, "0x" + "11" * 20, 7)
    to_buyer = pieces.seal_to_buyer(piece, delivery.public_key(b), ctx)
    assert pieces.open_delivered(to_buyer, piece.index, b, ctx) == piece.value
    assert pieces.open_delivered(to_buyer, piece.index + 1, b, ctx) != piece.value  # mask binds the index
    other = delivery.Context(1, "0x" + "11" * 20, 8)
    assert pieces.open_delivered(to_buyer, piece.index, b, other) != piece.value  # and the license
