"""Signed peer records: which libp2p peer serves which operator's shares at which URL.

A record is canonical JSON signed twice: by the operator's Ethereum key (so a peer cannot claim
an operator it does not hold the key of) and by the peer's libp2p ed25519 key (so an operator's
record cannot be replayed under another peer id). It is stored in the Kademlia DHT under
``/datasov/p/<tagged hash of the peer id>`` (see :func:`dht_key`); :class:`PeerRecordValidator`
rejects anything else, and says so in the log.

Why a hash and not ``/datasov/peer/<peer id>``: py-libp2p 0.8 looks a value's key up with
FIND_NODE, and its FIND_NODE handler drops any key that is neither a multihash nor at most 50
bytes ("FIND_NODE key is not a valid PeerId (66 bytes)"), so a 66-byte key could be stored only
at the peers already in the routing table. Every DHT key we use stays under that limit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.peer.id import ID
from libp2p.records.validator import Validator

from ..errors import NodeError

NAMESPACE = "datasov"
DOMAIN = "datasov/peer-record/v1"
KEY_TAG = b"datasov/peer-key/v1\x00"
MAX_RECORD = 4096
MAX_DHT_KEY = 50  # bytes: the longest non-multihash key py-libp2p's FIND_NODE handler accepts
log = logging.getLogger("datasov.node.p2p")


class RecordError(NodeError):
    code = "bad_peer_record"


@dataclass(frozen=True, slots=True)
class PeerRecord:
    peer_id: str
    operator: str
    http_url: str
    capacity: int
    free: int
    price: int  # token units per GiB per epoch (0 = negotiable)
    timestamp: int
    public_key: str  # hex, libp2p protobuf-serialised public key
    domain: str = DOMAIN

    def body(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()


def dht_key(peer_id: str) -> str:
    """The DHT key of a peer's record: ``/datasov/p/`` and 32 hex digits of a tagged SHA-256 of its id."""
    return f"/{NAMESPACE}/p/{hashlib.sha256(KEY_TAG + peer_id.encode()).hexdigest()[:32]}"


def sign_record(record: PeerRecord, operator: LocalAccount, key_pair: KeyPair) -> bytes:
    body = record.body()
    return json.dumps(
        {
            "record": json.loads(body),
            "operator_signature": "0x" + bytes(operator.sign_message(encode_defunct(body)).signature).hex(),
            "peer_signature": key_pair.private_key.sign(body).hex(),
        },
        sort_keys=True,
    ).encode()


def open_record(raw: bytes) -> PeerRecord:
    """Parse and verify a signed record; raises :class:`RecordError`."""
    if len(raw) > MAX_RECORD:
        raise RecordError("peer record too large")
    try:
        envelope: dict[str, Any] = json.loads(raw)
        record = PeerRecord(**envelope["record"])
        body = record.body()
        operator = Account.recover_message(
            encode_defunct(body), signature=bytes.fromhex(envelope["operator_signature"].removeprefix("0x"))
        )
        public_key = deserialize_public_key(bytes.fromhex(record.public_key))
        peer_ok = public_key.verify(body, bytes.fromhex(envelope["peer_signature"]))
    except Exception as err:  # malformed JSON, fields, hex or signatures
        raise RecordError(f"malformed peer record: {err}") from err
    if record.domain != DOMAIN:
        raise RecordError(f"unknown record domain {record.domain!r}")
    if operator.lower() != record.operator.lower():
        raise RecordError("operator signature does not match the record's operator")
    if not peer_ok or ID.from_pubkey(public_key).to_base58() != record.peer_id:
        raise RecordError("peer signature or public key does not match the record's peer id")
    return record


class PeerRecordValidator(Validator):
    """DHT validator for ``/datasov/...`` keys: peer records must verify and match their key."""

    def validate(self, key: str, value: bytes) -> None:
        try:
            parts = key.strip("/").split("/")
            if len(parts) != 3 or parts[1] != "p":
                raise RecordError(f"unknown datasov key {key}")
            record = open_record(value)
            if dht_key(record.peer_id) != key:
                raise RecordError(f"record of peer {record.peer_id} stored under another peer's key")
        except RecordError as err:
            log.warning("rejected peer record under %s: %s", key, err)
            raise

    def select(self, key: str, values: list[bytes]) -> int:
        """The newest valid record wins."""
        best, best_ts = 0, -1
        for i, value in enumerate(values):
            try:
                ts = open_record(value).timestamp
            except RecordError:
                continue
            if ts > best_ts:
                best, best_ts = i, ts
        return best


def now() -> int:
    return int(time.time())
