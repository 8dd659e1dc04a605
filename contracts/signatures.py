"""Who signed an EIP-191 personal message, with eth_keys alone.

Announcements (:mod:`contracts.announcements`) and storage orders (:mod:`storage_node.orders`) are
signed with eth_account (``sign_message(encode_defunct(...))``); checking them needs only the public
key recovery, and eth_account costs about a second to import (its eth_keyfile imports py_ecc's
BLS12-381), so commands that only read and nodes that only check do without it.
"""

from __future__ import annotations

from eth_keys.datatypes import Signature
from eth_utils.crypto import keccak


def recover_signer(message: bytes, signature: bytes) -> str:
    """The address whose key made the EIP-191 personal-message ``signature`` (r || s || v) of ``message``,
    as eth_account's ``Account.recover_message(encode_defunct(message), signature=...)`` finds it (v as
    27/28, 0/1 or EIP-155), with eth_keys alone: verifying needs no eth_account (a second to import)."""
    if len(signature) != 65:
        raise ValueError(f"signature of {len(signature)} bytes (expected 65)")
    v = signature[64]
    if v in (0, 1):
        recovery = v
    elif v in (27, 28):
        recovery = v - 27
    elif v >= 35:
        recovery = (v - 35) % 2
    else:
        raise ValueError(f"signature v {v} is no recovery id")
    digest = keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)
    key = Signature(vrs=(recovery, int.from_bytes(signature[:32]), int.from_bytes(signature[32:64])))
    return str(key.recover_public_key_from_msg_hash(digest).to_checksum_address())
