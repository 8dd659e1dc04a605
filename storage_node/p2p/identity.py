"""The node's libp2p identity: an ed25519 key kept in the node's home (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from libp2p.crypto.ed25519 import Ed25519PrivateKey, create_new_key_pair
from libp2p.crypto.keys import KeyPair

from ..identity import KeyFileError

KEY_FILE = "p2p.key"


def load_or_create_p2p_key(home: Path) -> KeyPair:
    path = home / KEY_FILE
    home.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        pair = create_new_key_pair()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pair.private_key.to_bytes().hex() + "\n")
        return pair
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    try:
        private = Ed25519PrivateKey.from_bytes(bytes.fromhex(path.read_text().strip()))
    except ValueError as err:
        raise KeyFileError(f"{path} does not hold an ed25519 key") from err
    return KeyPair(private, private.get_public_key())
