"""The node's operator identity: an Ethereum key kept in the node's home, readable by its owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from eth_keys.datatypes import PrivateKey
from eth_utils.exceptions import ValidationError

from .errors import NodeError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

KEY_FILE = "operator.key"


class KeyFileError(NodeError):
    code = "key_file"


def load_or_create_operator(home: Path) -> LocalAccount:
    """The operator account stored in ``home/operator.key`` (0600), created on first use."""
    from eth_account import Account  # a second to import: only where the key signs

    path = home / KEY_FILE
    home.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        account: LocalAccount = Account.create()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(bytes(account.key).hex() + "\n")
        return account
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    try:
        loaded: LocalAccount = Account.from_key(bytes.fromhex(path.read_text().strip()))
    except ValueError as err:
        raise KeyFileError(f"{path} does not hold a private key") from err
    return loaded


def operator_address(home: Path) -> str:
    """The operator's address from ``home/operator.key`` (created on first use), without eth_account."""
    path = home / KEY_FILE
    if not path.exists():
        return str(load_or_create_operator(home).address)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    try:
        return str(PrivateKey(bytes.fromhex(path.read_text().strip())).public_key.to_checksum_address())
    except (ValueError, ValidationError) as err:
        raise KeyFileError(f"{path} does not hold a private key") from err
