"""Streaming encryption: round trips, and every kind of tampering fails with a named error."""

import hashlib

import nacl.public
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure import envelope
from erasure.errors import DecryptionError, KeyWrapError, ParameterError

MSG = 64  # small messages so tests cover many-message streams cheaply


def encrypt(key: bytes, data: bytes, chunking: int = 7) -> tuple[bytes, list[bytes]]:
    header, messages = envelope.encrypt_stream(
        key, [data[i : i + chunking] for i in range(0, len(data), chunking)], MSG
    )
    return header, list(messages)


def decrypt(key: bytes, header: bytes, messages: list[bytes]) -> bytes:
    return b"".join(envelope.decrypt_stream(key, header, [b"".join(messages)], MSG))


@given(data=st.binary(max_size=700), chunking=st.integers(1, 200))
def test_round_trip_and_sizes(data: bytes, chunking: int) -> None:
    key = envelope.new_data_key()
    header, messages = encrypt(key, data, chunking)
    assert len(header) == envelope.HEADER_SIZE
    assert len(messages) == envelope.message_count(len(data), MSG)
    assert sum(map(len, messages)) == envelope.ciphertext_size(len(data), MSG)
    assert envelope.plaintext_size_of(sum(map(len, messages)), MSG) == len(data)
    assert decrypt(key, header, messages) == data


def test_empty_plaintext_is_one_final_message() -> None:
    key = envelope.new_data_key()
    header, messages = encrypt(key, b"")
    assert [len(m) for m in messages] == [envelope.ABYTES]
    assert decrypt(key, header, messages) == b""


@given(data=st.binary(min_size=1, max_size=400), pos=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_any_flipped_bit_fails(data: bytes, pos: int, bit: int) -> None:
    key = envelope.new_data_key()
    header, messages = encrypt(key, data)
    blob = bytearray(b"".join(messages))
    blob[pos % len(blob)] ^= 1 << bit
    with pytest.raises(DecryptionError):
        b"".join(envelope.decrypt_stream(key, header, [bytes(blob)], MSG))


def test_reordered_dropped_truncated_and_extended_streams_fail() -> None:
    key = envelope.new_data_key()
    data = bytes(range(256)) * 2
    header, messages = encrypt(key, data)
    assert len(messages) == 8
    with pytest.raises(DecryptionError):
        decrypt(key, header, [messages[1], messages[0], *messages[2:]])
    with pytest.raises(DecryptionError):
        decrypt(key, header, messages[:3] + messages[4:])
    with pytest.raises(DecryptionError, match="truncated"):
        decrypt(key, header, messages[:-1])
    with pytest.raises(DecryptionError, match="after the final"):
        decrypt(key, header, [*messages, messages[-1]])
    with pytest.raises(DecryptionError):
        decrypt(envelope.new_data_key(), header, messages)
    with pytest.raises(DecryptionError):
        decrypt(key, bytes(envelope.HEADER_SIZE), messages)


def test_key_wrapping() -> None:
    lab = nacl.public.PrivateKey.generate()
    key = envelope.new_data_key()
    sealed = envelope.seal_key(key, bytes(lab.public_key))
    assert len(sealed) == envelope.SEALED_KEY_SIZE
    assert envelope.open_sealed_key(sealed, bytes(lab)) == key
    other = nacl.public.PrivateKey.generate()
    with pytest.raises(KeyWrapError):
        envelope.open_sealed_key(sealed, bytes(other))
    with pytest.raises(KeyWrapError):
        envelope.open_sealed_key(sealed[:-1], bytes(lab))
    with pytest.raises(ParameterError):
        envelope.seal_key(key, b"short")
    with pytest.raises(ParameterError):
        envelope.seal_key(b"short", bytes(lab.public_key))


def test_key_commitment_binds_key_and_salt() -> None:
    key, salt = envelope.new_data_key(), envelope.new_salt()
    c = envelope.key_commitment(key, salt)
    assert envelope.check_key_commitment(key, salt, c)
    assert not envelope.check_key_commitment(envelope.new_data_key(), salt, c)
    assert not envelope.check_key_commitment(key, envelope.new_salt(), c)
    # domain-separated: the documented tagged hash, never an untagged digest of the same inputs
    assert c == hashlib.sha256(envelope.KEY_COMMITMENT_TAG + salt + key).digest()
    assert c not in (hashlib.sha256(key).digest(), hashlib.sha256(salt + key).digest())
