"""Streaming authenticated encryption and data-key wrapping.

Encryption is libsodium's secretstream (XChaCha20-Poly1305) over messages of
``MESSAGE_SIZE`` plaintext bytes; each ciphertext message is ``ABYTES`` longer. The last
message, and only it, carries ``TAG_FINAL``, so a flipped bit, a reordered, dropped or
duplicated message, a truncated stream or bytes after the end all fail with
:class:`~erasure.errors.DecryptionError`. Empty plaintext is one empty final message.

The 24-byte stream header is not secret; it travels in the manifest.

Key wrapping seals a 32-byte data key to an X25519 public key (libsodium sealed box).
:func:`key_commitment` is a domain-tagged SHA-256 of a dataset salt and the key that an owner
can publish on-chain without revealing the key; a buyer checks the key it receives against it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public
import nacl.utils

from .errors import DecryptionError, KeyWrapError, ParameterError

SCHEME = "xchacha20poly1305-secretstream-v1"
KEY_SIZE = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES
HEADER_SIZE = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
MESSAGE_SIZE = 1 << 20
SALT_SIZE = 32
SEALED_KEY_SIZE = KEY_SIZE + sodium.crypto_box_SEALBYTES

_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
KEY_COMMITMENT_TAG = b"datasov/key-commitment/v1\x00"


def new_data_key() -> bytes:
    """A fresh random 32-byte data key."""
    return nacl.utils.random(KEY_SIZE)


def new_salt() -> bytes:
    return nacl.utils.random(SALT_SIZE)


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ParameterError(f"data key must be {KEY_SIZE} bytes, got {len(key)}")


def message_count(plaintext_size: int, message_size: int = MESSAGE_SIZE) -> int:
    return max(1, -(-plaintext_size // message_size))


def ciphertext_size(plaintext_size: int, message_size: int = MESSAGE_SIZE) -> int:
    """Exact ciphertext length (header excluded) for a plaintext length."""
    if plaintext_size < 0:
        raise ParameterError("plaintext size must be >= 0")
    return plaintext_size + ABYTES * message_count(plaintext_size, message_size)


def plaintext_size_of(ciphertext_len: int, message_size: int = MESSAGE_SIZE) -> int:
    """Inverse of :func:`ciphertext_size`; raises ParameterError if no plaintext length maps to it."""
    full = message_size + ABYTES
    count = max(1, -(-ciphertext_len // full))
    size = ciphertext_len - ABYTES * count
    if size < 0 or ciphertext_size(size, message_size) != ciphertext_len:
        raise ParameterError(f"{ciphertext_len} is not a valid ciphertext length")
    return size


class Encryptor:
    """Push side of a secretstream. Feed plaintext messages with :meth:`push`; mark the last."""

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self.header: bytes = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, key)
        self._done = False

    def push(self, message: bytes, *, final: bool) -> bytes:
        if self._done:
            raise ParameterError("stream already finalized")
        self._done = final
        tag = _TAG_FINAL if final else _TAG_MESSAGE
        return sodium.crypto_secretstream_xchacha20poly1305_push(self._state, message, None, tag)


class Decryptor:
    """Pull side of a secretstream: one ciphertext message in, its plaintext out."""

    def __init__(self, key: bytes, header: bytes) -> None:
        _check_key(key)
        if len(header) != HEADER_SIZE:
            raise DecryptionError(f"stream header must be {HEADER_SIZE} bytes, got {len(header)}")
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        try:
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)
        except nacl.exceptions.CryptoError as err:
            raise DecryptionError("invalid stream header") from err
        self.finished = False

    def pull(self, message: bytes) -> bytes:
        if self.finished:
            raise DecryptionError("data after the final message")
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, message, None)
        except nacl.exceptions.CryptoError as err:
            raise DecryptionError("message failed authentication (wrong key, altered or out of order)") from err
        if tag == _TAG_FINAL:
            self.finished = True
        elif tag != _TAG_MESSAGE:
            raise DecryptionError(f"unexpected secretstream tag {tag}")
        return plain


def rechunk(chunks: Iterable[bytes | memoryview], size: int) -> Iterator[bytes]:
    """Regroup a byte stream into pieces of exactly ``size`` bytes (the last may be shorter;
    an empty stream yields nothing)."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) >= size:
            view = memoryview(buf)
            cut = len(buf) - len(buf) % size
            for i in range(0, cut, size):
                yield bytes(view[i : i + size])
            view.release()
            del buf[:cut]
    if buf:
        yield bytes(buf)


def encrypt_stream(
    key: bytes, chunks: Iterable[bytes | memoryview], message_size: int = MESSAGE_SIZE
) -> tuple[bytes, Iterator[bytes]]:
    """Encrypt a plaintext stream. Returns the header and an iterator of ciphertext messages."""
    enc = Encryptor(key)

    def messages() -> Iterator[bytes]:
        pieces = rechunk(chunks, message_size)
        current = next(pieces, b"")
        for following in pieces:
            yield enc.push(current, final=False)
            current = following
        yield enc.push(current, final=True)

    return enc.header, messages()


def decrypt_stream(
    key: bytes, header: bytes, ciphertext: Iterable[bytes | memoryview], message_size: int = MESSAGE_SIZE
) -> Iterator[bytes]:
    """Decrypt a ciphertext stream (any chunking) into plaintext messages.

    Raises :class:`DecryptionError` on any tampering, on truncation (no final message) and
    on bytes after the final message.
    """
    dec = Decryptor(key, header)
    for message in rechunk(ciphertext, message_size + ABYTES):
        yield dec.pull(message)
    if not dec.finished:
        raise DecryptionError("ciphertext truncated: the final message is missing")


def seal_key(data_key: bytes, recipient_public_key: bytes) -> bytes:
    """Seal a data key to a 32-byte X25519 public key (anonymous sender)."""
    _check_key(data_key)
    try:
        box = nacl.public.SealedBox(nacl.public.PublicKey(recipient_public_key))
    except (nacl.exceptions.CryptoError, nacl.exceptions.TypeError, ValueError) as err:
        raise ParameterError("recipient public key must be 32 bytes of X25519") from err
    return bytes(box.encrypt(data_key))


def open_sealed_key(sealed: bytes, recipient_private_key: bytes) -> bytes:
    """Open a sealed data key; raises :class:`KeyWrapError` if it was not sealed to this key."""
    try:
        box = nacl.public.SealedBox(nacl.public.PrivateKey(recipient_private_key))
        key = bytes(box.decrypt(sealed))
    except (nacl.exceptions.CryptoError, nacl.exceptions.TypeError, ValueError) as err:
        raise KeyWrapError("sealed key could not be opened with this private key") from err
    if len(key) != KEY_SIZE:
        raise KeyWrapError(f"sealed payload is {len(key)} bytes, expected a {KEY_SIZE}-byte key")
    return key


def key_commitment(data_key: bytes, salt: bytes) -> bytes:
    """SHA256(tag || salt || key): publishable, binding, and reveals nothing usable of the key."""
    _check_key(data_key)
    if len(salt) != SALT_SIZE:
        raise ParameterError(f"salt must be {SALT_SIZE} bytes, got {len(salt)}")
    return hashlib.sha256(KEY_COMMITMENT_TAG + salt + data_key).digest()


def check_key_commitment(data_key: bytes, salt: bytes, commitment: bytes) -> bool:
    return hmac.compare_digest(key_commitment(data_key, salt), commitment)
