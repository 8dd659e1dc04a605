"""The local keystore: the user's account key, data keys of published datasets, license secrets.

One file, ``HOME/keystore.json`` (mode 0600), encrypted at rest: a key derived from the passphrase
with Argon2id (libsodium ``crypto_pwhash``) seals the entries with XSalsa20-Poly1305 (``SecretBox``).
Nothing in it is ever written or logged in the clear. Writes are atomic (temp file, fsync, rename)
under an exclusive ``flock``, so the key agent and the CLI can share one home.

Where the passphrase comes from is the caller's business (``datasov`` reads ``DATASOV_PASSPHRASE``,
``--passphrase-file``, a prompt, or a machine secret made by ``datasov init --no-passphrase``).

Format (version 1)::

    {"format": "datasov-keystore", "version": 1, "kdf": "argon2id13", "opslimit": N, "memlimit": N,
     "salt": hex, "box": hex(SecretBox(canonical JSON of the entries))}
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
from eth_keys.datatypes import PrivateKey

from contracts import delivery

from .errors import MarketError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

FORMAT = "datasov-keystore"
VERSION = 1
FILE = "keystore.json"
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


class KeystoreError(MarketError):
    """The keystore is missing, unreadable, too open, or the passphrase is wrong."""


class WrongPassphrase(KeystoreError):
    pass


@dataclass(frozen=True, slots=True)
class DatasetKey:
    dataset_id: int
    manifest_hash: bytes
    data_key: bytes


def _derive(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit)
    )


class Keystore:
    """``Keystore.create(home, passphrase)`` once, then ``Keystore.open(home, passphrase)``."""

    def __init__(self, path: Path, box_key: bytes, header: dict[str, Any]) -> None:
        self.path = path
        self._box = nacl.secret.SecretBox(box_key)
        self._header = header
        self._account: LocalAccount | None = None

    # ------------------------------------------------------------------ lifecycle ----

    @classmethod
    def create(cls, home: Path, passphrase: bytes, *, account: LocalAccount | None = None) -> Keystore:
        """A new keystore holding ``account`` (a fresh one by default); refuses to overwrite."""
        path = home / FILE
        if path.exists():
            raise KeystoreError(f"{path} already exists")
        home.mkdir(parents=True, exist_ok=True)
        salt = secrets.token_bytes(nacl.pwhash.argon2id.SALTBYTES)
        header = {
            "format": FORMAT,
            "version": VERSION,
            "kdf": "argon2id13",
            "opslimit": OPSLIMIT,
            "memlimit": MEMLIMIT,
            "salt": salt.hex(),
        }
        store = cls(path, _derive(passphrase, salt, OPSLIMIT, MEMLIMIT), header)
        if account is None:
            from eth_account import Account  # eth_account (a second to import) only where it signs

            account = Account.create()
        store._write({"account": bytes(account.key).hex(), "datasets": {}, "buyer_keys": {}, "licenses": {}})
        return store

    @classmethod
    def open(cls, home: Path, passphrase: bytes) -> Keystore:
        path = home / FILE
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError as err:
            raise KeystoreError(f"no keystore in {home}; run: datasov init --home {home}") from err
        if mode & 0o077:
            raise KeystoreError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
        header = cls._read_header(path)
        try:
            salt = bytes.fromhex(header["salt"])
            key = _derive(passphrase, salt, int(header["opslimit"]), int(header["memlimit"]))
        except (KeyError, ValueError, TypeError, nacl.exceptions.CryptoError) as err:
            raise KeystoreError(f"{path}: malformed key derivation parameters") from err
        store = cls(path, key, {k: v for k, v in header.items() if k != "box"})
        store._load()  # fails now, not later, on a wrong passphrase
        return store

    @staticmethod
    def _read_header(path: Path) -> dict[str, Any]:
        try:
            header = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise KeystoreError(f"cannot read {path}: {err}") from err
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise KeystoreError(f"{path} is not a datasov keystore")
        if header.get("version") != VERSION:
            raise KeystoreError(f"{path}: unsupported keystore version {header.get('version')!r}")
        return header

    # ------------------------------------------------------------------ storage ----

    def _load(self) -> dict[str, Any]:
        header = self._read_header(self.path)
        try:
            plain = self._box.decrypt(bytes.fromhex(header["box"]))
        except nacl.exceptions.CryptoError as err:
            raise WrongPassphrase(f"wrong passphrase for {self.path}") from err
        except (KeyError, ValueError) as err:
            raise KeystoreError(f"{self.path}: malformed keystore") from err
        entries: dict[str, Any] = json.loads(plain)
        return entries

    def _write(self, entries: dict[str, Any]) -> None:
        plain = json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()
        doc = {**self._header, "box": bytes(self._box.encrypt(plain)).hex()}
        tmp = self.path.with_name(f".{FILE}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def _update(self) -> Iterator[dict[str, Any]]:
        lock = self.path.with_name(FILE + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            entries = self._load()
            yield entries
            self._write(entries)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ entries ----

    @property
    def account(self) -> LocalAccount:
        """The account key (it never changes: read and decrypted once)."""
        if self._account is None:
            from eth_account import Account

            self._account = Account.from_key(bytes.fromhex(self._load()["account"]))
        return self._account

    @property
    def address(self) -> str:
        """The account's checksummed address, without importing eth_account (for commands that only read)."""
        if self._account is not None:
            return str(self._account.address)
        return str(PrivateKey(bytes.fromhex(self._load()["account"])).public_key.to_checksum_address())

    def add_dataset(self, manifest_hash: bytes, data_key: bytes, *, dataset_id: int | None = None) -> None:
        """Keep a dataset's data key (first by manifest hash, before registration; then with its id)."""
        with self._update() as entries:
            entries["datasets"][manifest_hash.hex()] = {"key": data_key.hex(), "id": dataset_id}

    def dataset_key(self, dataset_id: int) -> DatasetKey:
        for manifest_hex, entry in self._load()["datasets"].items():
            if entry["id"] == dataset_id:
                return DatasetKey(dataset_id, bytes.fromhex(manifest_hex), bytes.fromhex(entry["key"]))
        raise KeystoreError(f"no data key for dataset {dataset_id} in {self.path}")

    def data_key_for(self, manifest_hash: bytes) -> bytes:
        """The data key of the dataset with this manifest hash (unambiguous across chains, unlike ids)."""
        entry = self._load()["datasets"].get(manifest_hash.hex())
        if entry is None:
            raise KeystoreError(f"no data key for manifest {manifest_hash.hex()} in {self.path}")
        return bytes.fromhex(entry["key"])

    def datasets(self) -> list[int]:
        return sorted(int(e["id"]) for e in self._load()["datasets"].values() if e["id"] is not None)

    def new_buyer_key(self, dataset_id: int) -> bytes:
        """A fresh per-license BN254 key pair (:mod:`contracts.delivery`), saved *before* the purchase
        is sent (a crash in between cannot lose it); returns the 64-byte public point to put on-chain."""
        secret = delivery.new_secret()
        public = delivery.public_key(secret)
        with self._update() as entries:
            entries["buyer_keys"][public.hex()] = {"scheme": "bn254", "secret": hex(secret), "dataset": dataset_id}
        return public

    def note_license(self, license_id: int, buyer_key: bytes) -> None:
        with self._update() as entries:
            entries["licenses"][str(license_id)] = buyer_key.hex()

    def license_key(self, license_id: int) -> bytes:
        """The public key this keystore bought ``license_id`` with (see :meth:`note_license`)."""
        entry = self._load()["licenses"].get(str(license_id))
        if entry is None:
            raise KeystoreError(f"license {license_id} was not bought from this keystore ({self.path})")
        return bytes.fromhex(entry)

    def buyer_secret(self, buyer_key: bytes) -> int:
        """The secret scalar of a public key this keystore made (see :meth:`new_buyer_key`)."""
        entry = self._load()["buyer_keys"].get(buyer_key.hex())
        if entry is None or entry.get("scheme") != "bn254":
            raise KeystoreError(f"this license's key was not made by this keystore ({self.path})")
        return int(entry["secret"], 16)

    def licenses(self) -> list[int]:
        return sorted(int(k) for k in self._load()["licenses"])

    # ------------------------------------------------------------------- backup ----

    def export_backup(self, passphrase: bytes) -> bytes:
        """An encrypted copy of every entry (account, data keys, buyer keys, licenses) under its own
        ``passphrase`` and a fresh salt: the same format as the keystore file, ``"format":
        "datasov-key-backup"``. Restore it with :meth:`import_backup` in another home."""
        salt = secrets.token_bytes(nacl.pwhash.argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(_derive(passphrase, salt, OPSLIMIT, MEMLIMIT))
        plain = json.dumps(self._load(), sort_keys=True, separators=(",", ":")).encode()
        doc = {
            "format": BACKUP_FORMAT,
            "version": VERSION,
            "kdf": "argon2id13",
            "opslimit": OPSLIMIT,
            "memlimit": MEMLIMIT,
            "salt": salt.hex(),
            "box": bytes(box.encrypt(plain)).hex(),
        }
        return (json.dumps(doc, indent=1) + "\n").encode()

    def import_backup(self, data: bytes, passphrase: bytes) -> BackupImport:
        """Merge a backup's data keys, buyer keys and licenses into this keystore (entries already
        here are kept). This keystore's account is never replaced: ``same_account`` says whether
        the backup's is the same (if not, its data keys serve buyers only where this account is the
        dataset's key agent). Raises :class:`WrongPassphrase` or :class:`KeystoreError`, changing
        nothing."""
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
                raise KeystoreError("not a datasov key backup")
            if doc.get("version") != VERSION:
                raise KeystoreError(f"unsupported key backup version {doc.get('version')!r}")
            salt = bytes.fromhex(doc["salt"])
            box = nacl.secret.SecretBox(_derive(passphrase, salt, int(doc["opslimit"]), int(doc["memlimit"])))
            sealed = bytes.fromhex(doc["box"])
        except (ValueError, KeyError, TypeError, nacl.exceptions.CryptoError) as err:
            raise KeystoreError(f"malformed key backup: {err}") from err
        try:
            theirs: dict[str, Any] = json.loads(box.decrypt(sealed))
        except nacl.exceptions.CryptoError as err:
            raise WrongPassphrase("wrong passphrase for the key backup") from err
        added: dict[str, int] = {}
        with self._update() as entries:
            for section in ("datasets", "buyer_keys", "licenses"):
                new = {k: v for k, v in theirs.get(section, {}).items() if k not in entries[section]}
                entries[section].update(new)
                added[section] = len(new)
            same = theirs.get("account") == entries["account"]
        return BackupImport(datasets=added["datasets"], buyer_keys=added["buyer_keys"], same_account=same)


BACKUP_FORMAT = "datasov-key-backup"


@dataclass(frozen=True, slots=True)
class BackupImport:
    """What :meth:`Keystore.import_backup` added."""

    datasets: int
    buyer_keys: int
    same_account: bool
