"""Format v2's STREAM AEAD: committed vectors, any message alone, every tampering fails by name."""

import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from erasure import envelope, stream
from erasure.errors import DecryptionError, MessageForged, ParameterError, StreamExtended, StreamTruncated
from tests.vectors.generate import seeded

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "stream_v2.json").read_text())
MSG = 50
schemes = st.sampled_from(stream.SCHEMES)


def encrypt(key: bytes, data: bytes, scheme: str, chunking: int = 7) -> tuple[bytes, list[bytes]]:
    header, messages = stream.encrypt_stream(
        key, [data[i : i + chunking] for i in range(0, len(data), chunking)], scheme=scheme, message_size=MSG
    )
    return header, list(messages)


def decrypt(key: bytes, header: bytes, messages: list[bytes], scheme: str) -> bytes:
    return b"".join(stream.decrypt_stream(key, header, [b"".join(messages)], scheme=scheme, message_size=MSG))


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: f"{c['scheme']}-{c['name']}")
def test_committed_vectors_match_the_definition_and_the_code(case: dict[str, object]) -> None:
    key, header = bytes.fromhex(str(VECTORS["key_hex"])), bytes.fromhex(str(VECTORS["header_hex"]))
    scheme, size, seed = str(case["scheme"]), int(str(case["size"])), int(str(case["seed"]))
    data = seeded(seed, size)
    expected = [bytes.fromhex(m) for m in case["messages"]]  # type: ignore[attr-defined]
    # the definition, written out with the primitives alone
    subkey = HKDF(hashes.SHA256(), 32, header[:16], b"datasov/stream-subkey/v2\x00" + scheme.encode()).derive(key)
    aead = AESGCM(subkey) if scheme == stream.AES_GCM else ChaCha20Poly1305(subkey)
    pieces = [data[i : i + 100] for i in range(0, len(data), 100)] or [b""]
    by_hand = [
        aead.encrypt(header[16:] + struct.pack(">IB", i, i == len(pieces) - 1), p, None) for i, p in enumerate(pieces)
    ]
    assert by_hand == expected
    _, messages = stream.encrypt_stream(key, [data], scheme=scheme, message_size=100, header=header)
    assert list(messages) == expected
    assert b"".join(stream.decrypt_stream(key, header, expected, scheme=scheme, message_size=100)) == data


@given(data=st.binary(max_size=400), chunking=st.integers(1, 120), scheme=schemes)
def test_round_trip_sizes_and_each_message_alone(data: bytes, chunking: int, scheme: str) -> None:
    key = envelope.new_data_key()
    header, messages = encrypt(key, data, scheme, chunking)
    assert len(header) == stream.HEADER_SIZE
    assert len(messages) == stream.message_count(len(data), MSG)
    assert sum(map(len, messages)) == stream.ciphertext_size(len(data), MSG)
    assert decrypt(key, header, messages, scheme) == data
    cipher = stream.StreamCipher(key, header, scheme=scheme, message_size=MSG)
    last = len(messages) - 1
    for i in reversed(range(len(messages))):  # any message decrypts alone, in any order
        assert cipher.open(i, messages[i], last=i == last) == data[i * MSG : (i + 1) * MSG]


@given(data=st.binary(min_size=3 * MSG + 1, max_size=8 * MSG), scheme=schemes, pick=st.data())
def test_every_tampering_fails_with_its_named_error(data: bytes, scheme: str, pick: st.DataObject) -> None:
    key = envelope.new_data_key()
    header, messages = encrypt(key, data, scheme)
    count = len(messages)
    i = pick.draw(st.integers(0, count - 1), label="message")
    j = pick.draw(st.integers(0, count - 2).filter(lambda j: j != i and j != count - 1), label="other")

    flipped = list(messages)
    bit = pick.draw(st.integers(0, 8 * len(messages[i]) - 1), label="bit")
    flipped[i] = bytes(b ^ (1 << bit % 8) if n == bit // 8 else b for n, b in enumerate(messages[i]))
    with pytest.raises(MessageForged):
        decrypt(key, header, flipped, scheme)

    swapped = list(messages)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    with pytest.raises(MessageForged):
        decrypt(key, header, swapped, scheme)

    dropped = messages[:j] + messages[j + 1 :]  # an inner message dropped
    with pytest.raises(MessageForged):
        decrypt(key, header, dropped, scheme)

    with pytest.raises(StreamTruncated):  # cut on a message boundary
        decrypt(key, header, messages[: pick.draw(st.integers(1, count - 1), label="keep")], scheme)
    with pytest.raises(MessageForged):  # cut inside the last message
        decrypt(key, header, [*messages[:-1], messages[-1][:-1]], scheme)
    whole = data[: len(data) // MSG * MSG]  # full messages only, so appended bytes stay aligned
    header2, sealed = encrypt(key, whole, scheme)
    with pytest.raises(StreamExtended):  # a whole sealed stream followed by more messages
        decrypt(key, header2, [*sealed, sealed[0]], scheme)
    with pytest.raises(MessageForged):
        decrypt(envelope.new_data_key(), header, messages, scheme)
    with pytest.raises(MessageForged):
        decrypt(key, stream.new_header(), messages, scheme)
    other = stream.CHACHA if scheme == stream.AES_GCM else stream.AES_GCM
    with pytest.raises(MessageForged):
        decrypt(key, header, messages, other)


def test_empty_plaintext_is_one_final_message_and_empty_ciphertext_is_truncated() -> None:
    key = envelope.new_data_key()
    header, messages = encrypt(key, b"", stream.AES_GCM)
    assert [len(m) for m in messages] == [stream.TAG_SIZE]
    assert decrypt(key, header, messages, stream.AES_GCM) == b""
    with pytest.raises(StreamTruncated):
        decrypt(key, header, [], stream.AES_GCM)


def test_errors_are_decryption_errors_and_bad_parameters_are_named() -> None:
    assert issubclass(MessageForged, DecryptionError)
    assert issubclass(StreamTruncated, DecryptionError)
    assert issubclass(StreamExtended, DecryptionError)
    key = envelope.new_data_key()
    with pytest.raises(DecryptionError):
        stream.StreamCipher(key, b"short", scheme=stream.AES_GCM)
    with pytest.raises(ParameterError):
        stream.StreamCipher(key[:5], stream.new_header(), scheme=stream.AES_GCM)
    with pytest.raises(ParameterError):
        stream.StreamCipher(key, stream.new_header(), scheme="rot13")


def test_the_measured_choice_is_a_known_scheme() -> None:
    assert stream.choose_scheme() in stream.SCHEMES
