"""The keystore: encrypted at rest, 0600, wrong passphrases refused, nothing secret in the clear."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nacl.pwhash
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import delivery
from contracts.devchain import dev_account
from erasure import envelope
from market.keystore import Keystore, KeystoreError, WrongPassphrase

from ..conftest import PRODUCT_KDF


def test_roundtrip_and_permissions(tmp_path: Path) -> None:
    store = Keystore.create(tmp_path, b"correct horse", account=dev_account(3))
    key = envelope.new_data_key()
    store.add_dataset(b"\x11" * 32, key)
    store.add_dataset(b"\x11" * 32, key, dataset_id=7)
    public = store.new_buyer_key(7)
    store.note_license(42, public)

    again = Keystore.open(tmp_path, b"correct horse")
    assert again.account.address == dev_account(3).address
    assert again.dataset_key(7).data_key == key
    assert again.datasets() == [7]
    assert again.licenses() == [42]
    assert again.license_key(42) == public
    ctx = delivery.Context(1, "0x" + "ab" * 20, 42)
    assert delivery.open_sealed(delivery.seal(key, public, ctx), again.buyer_secret(public), ctx) == key
    assert oct((tmp_path / "keystore.json").stat().st_mode & 0o777) == "0o600"

    raw = (tmp_path / "keystore.json").read_text()
    for secret in (key.hex(), bytes(dev_account(3).key).hex(), f"{again.buyer_secret(public):x}"):
        assert secret not in raw  # nothing secret is stored in the clear
    with pytest.raises(KeystoreError):
        again.dataset_key(8)
    with pytest.raises(KeystoreError):
        again.buyer_secret(b"\0" * 32)


def test_wrong_passphrase_and_tampering_are_refused(tmp_path: Path) -> None:
    Keystore.create(tmp_path, b"right")
    with pytest.raises(WrongPassphrase):
        Keystore.open(tmp_path, b"wrong")
    path = tmp_path / "keystore.json"
    doc = json.loads(path.read_text())
    box = bytearray(bytes.fromhex(doc["box"]))
    box[-1] ^= 1
    doc["box"] = box.hex()
    path.write_text(json.dumps(doc))
    with pytest.raises(WrongPassphrase):  # authenticated encryption: a flipped bit is refused
        Keystore.open(tmp_path, b"right")
    with pytest.raises(KeystoreError):
        Keystore.create(tmp_path, b"right")  # never overwritten


def test_open_refuses_a_readable_keystore_and_garbage(tmp_path: Path) -> None:
    Keystore.create(tmp_path, b"pw")
    os.chmod(tmp_path / "keystore.json", 0o644)
    with pytest.raises(KeystoreError, match="readable by others"):
        Keystore.open(tmp_path, b"pw")
    os.chmod(tmp_path / "keystore.json", 0o600)
    (tmp_path / "keystore.json").write_text('{"format": "datasov-keystore", "version": 99}')
    with pytest.raises(KeystoreError, match="version"):
        Keystore.open(tmp_path, b"pw")
    with pytest.raises(KeystoreError, match="no keystore"):
        Keystore.open(tmp_path / "elsewhere", b"pw")


@settings(max_examples=5, deadline=None)
@given(passphrase=st.binary(min_size=1, max_size=64), ids=st.lists(st.integers(1, 10**9), max_size=4, unique=True))
def test_any_passphrase_roundtrips(tmp_path_factory: pytest.TempPathFactory, passphrase: bytes, ids: list[int]) -> None:
    home = tmp_path_factory.mktemp("ks")
    store = Keystore.create(home, passphrase)
    keys = {i: envelope.new_data_key() for i in ids}
    for i, key in keys.items():
        store.add_dataset(i.to_bytes(32, "big"), key, dataset_id=i)
    opened = Keystore.open(home, passphrase)
    assert {i: opened.dataset_key(i).data_key for i in ids} == keys


def test_the_product_derives_keys_at_argon2id_interactive_cost() -> None:
    """The suite's own keystores use the minimum cost (tests/conftest.py); the product's is this."""
    assert PRODUCT_KDF == (nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE)
