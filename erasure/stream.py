"""Seekable streaming AEAD (format v2): the STREAM construction, any message decrypts alone.

STREAM (Hoang, Reyhanitabar, Rogaway, Vizar, "Online authenticated-encryption and its nonce-reuse
misuse-resistance", CRYPTO 2015), laid out as Tink's ``AesGcmHkdfStreaming`` does:

- the stream header (public, kept in the manifest) is ``HKDF salt (16 random bytes) || nonce
  prefix (7 random bytes)``;
- the message key is ``HKDF-SHA256(ikm=data key, salt=header salt, info=SUBKEY_TAG || scheme)``,
  so a data key is never used directly and one key under two schemes gives unrelated subkeys;
- message i (counted from 0) is sealed by one AEAD call with the 12-byte nonce
  ``prefix || uint32_be(i) || last`` where ``last`` is 1 for the final message and 0 otherwise.

Each ciphertext message is ``TAG_SIZE`` bytes longer than its plaintext; every message but the last
holds exactly ``message_size`` plaintext bytes; empty plaintext is one empty final message. A
message opened at another position fails (reordered or dropped messages), a stream that ends on
a message not sealed as final is :class:`StreamTruncated`, and a sealed-final message followed by
more bytes is :class:`StreamExtended`.

The AEAD is chosen by measurement (:func:`choose_scheme`): AES-256-GCM through OpenSSL where the
CPU has AES instructions (it is then the faster one), ChaCha20-Poly1305 otherwise; the choice is
recorded in the manifest. Key wrapping and key commitments stay in :mod:`erasure.envelope`.
"""

from __future__ import annotations

import functools
import os
import struct
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .envelope import KEY_SIZE, rechunk
from .errors import DecryptionError, MessageForged, ParameterError, StreamExtended, StreamTruncated

AES_GCM = "aes256gcm-stream-v2"
CHACHA = "chacha20poly1305-stream-v2"
SCHEMES = (AES_GCM, CHACHA)
TAG_SIZE = 16
HKDF_SALT_SIZE = 16
PREFIX_SIZE = 7
HEADER_SIZE = HKDF_SALT_SIZE + PREFIX_SIZE
CIPHER_MESSAGE_SIZE = 64 * 1024
"""Default ciphertext bytes per message: 12 of them fill a 3 x 256 KiB segment exactly."""
MESSAGE_SIZE = CIPHER_MESSAGE_SIZE - TAG_SIZE
"""Default plaintext bytes per message (65,520)."""
MAX_MESSAGES = 1 << 32
SUBKEY_TAG = b"datasov/stream-subkey/v2\x00"


class _Aead(Protocol):
    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...
    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


def _make_aead(scheme: str, key: bytes) -> _Aead:
    if scheme == AES_GCM:
        return AESGCM(key)
    if scheme == CHACHA:
        return ChaCha20Poly1305(key)
    raise ParameterError(f"unknown stream scheme {scheme!r} (known: {', '.join(SCHEMES)})")


@functools.cache
def choose_scheme() -> str:
    """The faster AEAD on this machine, measured once per process (a few milliseconds).

    With AES instructions OpenSSL's AES-256-GCM runs at 2-3x ChaCha20-Poly1305; without them
    ChaCha20-Poly1305 wins by as much, so a measurement is the honest test of "has hardware AES"."""
    data = bytes(CIPHER_MESSAGE_SIZE)
    best, best_time = CHACHA, float("inf")
    for scheme in (CHACHA, AES_GCM):
        aead = _make_aead(scheme, bytes(KEY_SIZE))
        aead.encrypt(bytes(12), data, None)  # warm up
        start = time.perf_counter()
        for i in range(16):
            aead.encrypt(i.to_bytes(12, "big"), data, None)
        took = time.perf_counter() - start
        if took < best_time:
            best, best_time = scheme, took
    return best


def new_header() -> bytes:
    """A fresh random stream header (HKDF salt and nonce prefix)."""
    return os.urandom(HEADER_SIZE)


def message_count(plaintext_size: int, message_size: int = MESSAGE_SIZE) -> int:
    return max(1, -(-plaintext_size // message_size))


def ciphertext_size(plaintext_size: int, message_size: int = MESSAGE_SIZE) -> int:
    """Exact ciphertext length for a plaintext length."""
    if plaintext_size < 0:
        raise ParameterError("plaintext size must be >= 0")
    return plaintext_size + TAG_SIZE * message_count(plaintext_size, message_size)


class StreamCipher:
    """The message key of one stream: seal and open message i, each on its own."""

    def __init__(self, key: bytes, header: bytes, *, scheme: str, message_size: int = MESSAGE_SIZE) -> None:
        if len(key) != KEY_SIZE:
            raise ParameterError(f"data key must be {KEY_SIZE} bytes, got {len(key)}")
        if len(header) != HEADER_SIZE:
            raise DecryptionError(f"stream header must be {HEADER_SIZE} bytes, got {len(header)}")
        if message_size < 1:
            raise ParameterError("message_size must be >= 1")
        self.scheme = scheme
        self.message_size = message_size
        self._prefix = header[HKDF_SALT_SIZE:]
        subkey = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_SIZE,
            salt=header[:HKDF_SALT_SIZE],
            info=SUBKEY_TAG + scheme.encode(),
        ).derive(key)
        self._aead = _make_aead(scheme, subkey)

    def _nonce(self, index: int, last: bool) -> bytes:
        if not 0 <= index < MAX_MESSAGES:
            raise ParameterError(f"message {index} out of range [0, 2**32)")
        return self._prefix + struct.pack(">IB", index, 1 if last else 0)

    def seal(self, index: int, plaintext: bytes | memoryview, *, last: bool) -> bytes:
        if len(plaintext) > self.message_size or (not last and len(plaintext) != self.message_size):
            raise ParameterError(f"message {index}: {len(plaintext)} bytes (message size {self.message_size})")
        return self._aead.encrypt(self._nonce(index, last), bytes(plaintext), None)

    def try_open(self, index: int, ciphertext: bytes | memoryview, *, last: bool) -> bytes | None:
        """The plaintext of message ``index`` sealed with this ``last`` flag, or None."""
        if not TAG_SIZE <= len(ciphertext) <= self.message_size + TAG_SIZE:
            return None
        try:
            return self._aead.decrypt(self._nonce(index, last), bytes(ciphertext), None)
        except InvalidTag:
            return None

    def open(self, index: int, ciphertext: bytes | memoryview, *, last: bool) -> bytes:
        """Plaintext of message ``index``; ``last`` says whether it must be the final one.

        Raises :class:`StreamTruncated` if a message expected to be final was sealed as an inner
        one, :class:`StreamExtended` if an inner one was sealed as final, and
        :class:`MessageForged` if it does not authenticate at this position at all (altered,
        reordered, dropped or under another key)."""
        plain = self.try_open(index, ciphertext, last=last)
        if plain is not None:
            return plain
        if self.try_open(index, ciphertext, last=not last) is not None:
            if last:
                raise StreamTruncated(f"ciphertext truncated: message {index} is not the final message")
            raise StreamExtended(f"data after the final message (message {index} was sealed as final)")
        raise MessageForged(f"message {index} failed authentication (altered, reordered, dropped or wrong key)")


def encrypt_stream(
    key: bytes,
    chunks: Iterable[bytes | memoryview],
    *,
    scheme: str,
    message_size: int = MESSAGE_SIZE,
    header: bytes | None = None,
) -> tuple[bytes, Iterator[bytes]]:
    """Encrypt a plaintext stream: the header (fresh and random unless given: test vectors only)
    and an iterator of ciphertext messages."""
    header = new_header() if header is None else header
    cipher = StreamCipher(key, header, scheme=scheme, message_size=message_size)

    def messages() -> Iterator[bytes]:
        pieces = rechunk(chunks, message_size)
        current = next(pieces, b"")
        index = 0
        for following in pieces:
            yield cipher.seal(index, current, last=False)
            current = following
            index += 1
        yield cipher.seal(index, current, last=True)

    return header, messages()


def decrypt_stream(
    key: bytes,
    header: bytes,
    ciphertext: Iterable[bytes | memoryview],
    *,
    scheme: str,
    message_size: int = MESSAGE_SIZE,
) -> Iterator[bytes]:
    """Decrypt a whole ciphertext stream (any chunking) into plaintext messages, in order.

    Looks one message ahead, so it knows which message must be the final one: raises
    :class:`MessageForged`, :class:`StreamTruncated` or :class:`StreamExtended` (all
    :class:`~erasure.errors.DecryptionError`)."""
    cipher = StreamCipher(key, header, scheme=scheme, message_size=message_size)
    pieces = rechunk(ciphertext, message_size + TAG_SIZE)
    current = next(pieces, None)
    if current is None:
        raise StreamTruncated("ciphertext is empty: the final message is missing")
    index = 0
    for following in pieces:
        yield cipher.open(index, current, last=False)
        current = following
        index += 1
    yield cipher.open(index, current, last=True)
