"""Signed peer records: the node's on-chain announcement, carried in the DHT with fresh state.

A peer record wraps the operator's :class:`contracts.announcements.SignedAnnouncement` (signed by
the operator's Ethereum key: operator, HTTP URL, peer id, multiaddrs, capacity, ask, chain id; the
very bytes the node announces on-chain) and adds what changes between announcements (free bytes,
the time the peer last said so). The libp2p key of the announced peer id signs the whole, so a
record proves both identities: an operator's announcement cannot be replayed under another peer id
(the peer id must be the hash of the public key that signed), and a peer cannot claim an operator
whose key it does not hold.

Wire form (canonical JSON, at most :data:`MAX_RECORD` bytes, domain ``datasov/peer-record/v2``)::

    {"domain": ..., "announcement": "<SignedAnnouncement wire bytes>", "free": int, "seen_at": int,
     "public_key": "<hex libp2p protobuf public key>", "peer_signature": "<hex ed25519 over body()>"}

It is stored in the Kademlia DHT under ``/datasov/p/<tagged hash of the peer id>`` (see
:func:`dht_key`); :class:`PeerRecordValidator` rejects anything else, and says so in the log.

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
from dataclasses import dataclass
from typing import Any

from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.peer.id import ID
from libp2p.records.validator import Validator

from contracts.announcements import AnnouncementError, SignedAnnouncement

from ..errors import NodeError

NAMESPACE = "datasov"
DOMAIN = "datasov/peer-record/v2"
KEY_TAG = b"datasov/peer-key/v1\x00"
MAX_RECORD = 4096
MAX_DHT_KEY = 50  # bytes: the longest non-multihash key py-libp2p's FIND_NODE handler accepts
log = logging.getLogger("datasov.node.p2p")


class RecordError(NodeError):
    code = "bad_peer_record"


@dataclass(frozen=True, slots=True)
class PeerRecord:
    signed: SignedAnnouncement  # the operator's announcement (checked: see open_record)
    free: int  # bytes free when the peer published this record
    seen_at: int  # unix seconds: when it did
    public_key: str  # hex, libp2p protobuf-serialised public key of ``peer_id``

    @property
    def peer_id(self) -> str:
        return self.signed.announcement.peer_id

    @property
    def operator(self) -> str:
        return self.signed.announcement.operator

    @property
    def http_url(self) -> str:
        return self.signed.announcement.http_url

    @property
    def capacity(self) -> int:
        return self.signed.announcement.capacity

    @property
    def ask(self) -> int:
        return self.signed.announcement.ask

    @property
    def multiaddrs(self) -> tuple[str, ...]:
        return self.signed.announcement.multiaddrs

    def body(self) -> bytes:
        """What the peer key signs: everything but its own signature."""
        obj = {
            "domain": DOMAIN,
            "announcement": self.signed.to_bytes().decode(),
            "free": self.free,
            "seen_at": self.seen_at,
            "public_key": self.public_key,
        }
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

    def newer_than(self, other: PeerRecord) -> bool:
        """Newest announcement first, then the latest ``seen_at`` (every reader picks the same)."""
        if self.signed.to_bytes() != other.signed.to_bytes():
            return self.signed.newer_than(other.signed)
        return self.seen_at > other.seen_at


def dht_key(peer_id: str) -> str:
    """The DHT key of a peer's record: ``/datasov/p/`` and 32 hex digits of a tagged SHA-256 of its id."""
    return f"/{NAMESPACE}/p/{hashlib.sha256(KEY_TAG + peer_id.encode()).hexdigest()[:32]}"


def make_record(signed: SignedAnnouncement, key_pair: KeyPair, *, free: int, seen_at: int | None = None) -> bytes:
    """The signed wire form of this peer's record; the announcement must name this peer's id."""
    peer_id = ID.from_pubkey(key_pair.public_key).to_base58()
    if signed.announcement.peer_id != peer_id:
        raise RecordError(f"the announcement names peer {signed.announcement.peer_id!r}, this peer is {peer_id}")
    record = PeerRecord(signed, free, now() if seen_at is None else seen_at, key_pair.public_key.serialize().hex())
    body = record.body()
    envelope: dict[str, Any] = json.loads(body)
    envelope["peer_signature"] = key_pair.private_key.sign(body).hex()
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


def open_record(raw: bytes) -> PeerRecord:
    """Parse and verify a signed record (both signatures, the peer id's key); raises :class:`RecordError`."""
    if len(raw) > MAX_RECORD:
        raise RecordError(f"peer record of {len(raw)} bytes (limit {MAX_RECORD})")
    try:
        envelope: dict[str, Any] = json.loads(raw)
        if envelope.get("domain") != DOMAIN:
            raise RecordError(f"unknown record domain {envelope.get('domain')!r}")
        signed = SignedAnnouncement.from_bytes(str(envelope["announcement"]).encode())
        free, seen_at = envelope["free"], envelope["seen_at"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (free, seen_at)):
            raise RecordError("free and seen_at must be non-negative integers")
        record = PeerRecord(signed, free, seen_at, str(envelope["public_key"]))
        public_key = deserialize_public_key(bytes.fromhex(record.public_key))
        peer_ok = public_key.verify(record.body(), bytes.fromhex(str(envelope["peer_signature"])))
    except RecordError:
        raise
    except AnnouncementError as err:
        raise RecordError(f"peer record carries a bad announcement: {err}") from err
    except Exception as err:  # malformed JSON, fields, hex or keys
        raise RecordError(f"malformed peer record: {err}") from err
    try:
        signed.verify()
    except AnnouncementError as err:
        raise RecordError(f"operator signature: {err}") from err
    if not record.peer_id or ID.from_pubkey(public_key).to_base58() != record.peer_id:
        raise RecordError(f"peer id {record.peer_id!r} is not the hash of the record's public key")
    if not peer_ok:
        raise RecordError(f"peer signature of {record.peer_id} does not verify")
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
        """The newest valid record wins (see :meth:`PeerRecord.newer_than`); of equals, the last.

        Equals go to the last because py-libp2p asks ``select([stored, incoming])`` on a PUT_VALUE
        and answers nothing when it returns 0: a peer re-sending the record a node already holds
        (every lookup that reaches it twice) would see "Failed to store value at peer".
        """
        best: tuple[int, PeerRecord] | None = None
        for i, value in enumerate(values):
            try:
                record = open_record(value)
            except RecordError:
                continue
            if best is None or not best[1].newer_than(record):
                best = (i, record)
        return 0 if best is None else best[0]


def now() -> int:
    return int(time.time())
