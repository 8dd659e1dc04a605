"""Verifying an announcement or a storage order recovers its signer with eth_keys alone, exactly as eth_account does."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.signatures import recover_signer


def _eth_account(message: bytes, signature: bytes) -> str | None:
    try:
        return str(Account.recover_message(encode_defunct(message), signature=signature))
    except Exception:
        return None


def _ours(message: bytes, signature: bytes) -> str | None:
    try:
        return recover_signer(message, signature)
    except Exception:
        return None


@settings(max_examples=40, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300), v=st.sampled_from([0, 1, 27, 28, 37]))
def test_recovers_the_signer_for_every_form_of_v(key: bytes, message: bytes, v: int) -> None:
    if not 0 < int.from_bytes(key) < 2**256 - 2**128:  # a valid secp256k1 key
        return
    account = Account.from_key(key)
    signed = bytes(account.sign_message(encode_defunct(message)).signature)
    recovery = signed[64] - 27
    form = signed[:64] + bytes([v + recovery if v in (0, 27) else (35 + recovery if v == 37 else v)])
    assert _ours(message, form) == _eth_account(message, form)
    assert _ours(message, signed) == account.address


@settings(max_examples=60, deadline=None)
@given(message=st.binary(max_size=100), signature=st.binary(min_size=0, max_size=70))
def test_garbage_signatures_agree_too(message: bytes, signature: bytes) -> None:
    assert _ours(message, signature) == _eth_account(message, signature)
