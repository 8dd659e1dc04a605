"""Node announcements: a record, signed by the operator's Ethereum key, saying where and on what
terms its storage node serves.

    Announcement                         the terms (frozen; every field checked on construction)
      .canonical() -> bytes              DOMAIN + b"\\n" + canonical JSON: what the operator signs
      .sign(account) -> SignedAnnouncement
    SignedAnnouncement                   announcement + 65-byte EIP-191 signature
      .to_bytes() / from_bytes(raw)      the wire form: on-chain ``StorageMarket.announce(bytes)``
                                         and the payload the DHT peer record carries
      .verify() -> operator address      raises ForgedAnnouncement unless the signature recovers
                                         ``announcement.operator``

The wire form is canonical JSON ``{"announcement": {...}, "signature": "0x..."}`` of at most
:data:`MAX_ANNOUNCEMENT` bytes (the contract refuses longer records). The newest announcement of an
operator wins: on-chain, the latest event (the contract numbers them); in the DHT, the highest
``issued_at`` (unix seconds; ties broken by the higher signed bytes, so every reader picks the same).
``chain_id`` binds a record to one chain, so it cannot be replayed on another network.

Units: ``capacity`` in bytes offered; ``ask`` in token base units per GiB (2**30 bytes) per epoch.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Self

from eth_utils.address import is_address, to_checksum_address

from .errors import AnnouncementError, ForgedAnnouncement, MalformedAnnouncement
from .signatures import recover_signer

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = [
    "DOMAIN",
    "FORMAT_VERSION",
    "GIB",
    "MAX_ANNOUNCEMENT",
    "Announcement",
    "AnnouncementError",
    "ForgedAnnouncement",
    "MalformedAnnouncement",
    "SignedAnnouncement",
]

DOMAIN = "datasov/announcement/v1"
FORMAT_VERSION = 1
MAX_ANNOUNCEMENT = 2048  # bytes of the signed wire form (StorageMarket.MAX_ANNOUNCEMENT too)
GIB = 1 << 30
MAX_URL = 256
MAX_PEER_ID = 128
MAX_MULTIADDRS = 8
MAX_MULTIADDR = 200
MAX_REGION = 32
_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
_REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _./\-]*")
_PEER_ID = re.compile(r"[1-9A-HJ-NP-Za-km-z]+")  # base58btc


def _check_int(name: str, value: object, bits: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise MalformedAnnouncement(f"{name} must be an integer in [0, 2**{bits}), got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Announcement:
    """What an operator announces. Construction checks every field (``MalformedAnnouncement``)."""

    operator: str  # checksummed Ethereum address of the staked operator
    http_url: str  # http(s)://host[:port] of the node's API, no path
    chain_id: int  # the chain this announcement is for
    capacity: int = 0  # bytes offered
    ask: int = 0  # token base units per GiB per epoch; an order paying less is refused
    region: str = ""  # free label ("eu-west", "home-lab"), at most 32 characters
    peer_id: str = ""  # libp2p peer id (base58), "" when the node runs no libp2p
    multiaddrs: tuple[str, ...] = field(default=())  # libp2p listen addresses (without /p2p/...)
    issued_at: int = 0  # unix seconds; the newest announcement of an operator wins
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.operator, str) or not is_address(self.operator):
            raise MalformedAnnouncement(f"operator {self.operator!r} is not an Ethereum address")
        object.__setattr__(self, "operator", to_checksum_address(self.operator))
        url = self.http_url
        if not isinstance(url, str) or len(url) > MAX_URL or not _URL.fullmatch(url):
            raise MalformedAnnouncement(f"http_url {url!r} is not http(s)://host[:port] (no path, <= {MAX_URL})")
        _check_int("chain_id", self.chain_id, 64)
        _check_int("capacity", self.capacity, 64)
        _check_int("ask", self.ask, 128)
        _check_int("issued_at", self.issued_at, 40)
        if self.version != FORMAT_VERSION:
            raise MalformedAnnouncement(f"unknown announcement version {self.version!r}")
        if not isinstance(self.region, str) or len(self.region) > MAX_REGION:
            raise MalformedAnnouncement(f"region must be a string of at most {MAX_REGION} characters")
        if self.region and not _REGION.fullmatch(self.region):
            raise MalformedAnnouncement(f"region {self.region!r}: letters, digits, space, _ . / - only")
        if not isinstance(self.peer_id, str) or len(self.peer_id) > MAX_PEER_ID:
            raise MalformedAnnouncement(f"peer_id must be a string of at most {MAX_PEER_ID} characters")
        if self.peer_id and not _PEER_ID.fullmatch(self.peer_id):
            raise MalformedAnnouncement(f"peer_id {self.peer_id!r} is not base58")
        addrs = tuple(self.multiaddrs) if isinstance(self.multiaddrs, list | tuple) else None
        if addrs is None or len(addrs) > MAX_MULTIADDRS:
            raise MalformedAnnouncement(f"multiaddrs must be a list of at most {MAX_MULTIADDRS}")
        for a in addrs:
            if not isinstance(a, str) or not a.startswith("/") or len(a) > MAX_MULTIADDR:
                raise MalformedAnnouncement(f"multiaddr {a!r} is not /proto/value... of <= {MAX_MULTIADDR} chars")
        object.__setattr__(self, "multiaddrs", addrs)

    @property
    def host(self) -> str:
        """The host part of ``http_url`` (an IP address or a name; IPv6 without brackets)."""
        rest = self.http_url.split("://", 1)[1]
        if rest.startswith("["):
            return rest[1:].split("]", 1)[0]
        return rest.split(":", 1)[0]

    def fee_per_share_epoch(self, share_bytes: int) -> int:
        """What this node asks, in token base units per epoch, for a share of ``share_bytes``
        (rounded up to a whole token unit)."""
        return -(-self.ask * share_bytes // GIB)

    def to_json(self) -> dict[str, Any]:
        obj = asdict(self)
        obj["multiaddrs"] = list(self.multiaddrs)
        return obj

    @classmethod
    def from_json(cls, obj: object) -> Self:
        if not isinstance(obj, dict):
            raise MalformedAnnouncement("an announcement is a JSON object")
        try:
            return cls(**obj)
        except TypeError as err:  # unknown or missing fields
            raise MalformedAnnouncement(f"announcement fields: {err}") from err

    def canonical(self) -> bytes:
        """The bytes the operator signs: the domain tag, a newline, canonical JSON."""
        body = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return DOMAIN.encode() + b"\n" + body.encode()

    def sign(self, account: LocalAccount) -> SignedAnnouncement:
        """Sign with the operator's key; raises ``AnnouncementError`` if the key is another address's."""
        if account.address.lower() != self.operator.lower():
            raise AnnouncementError(f"key of {account.address} cannot sign for operator {self.operator}")
        from eth_account.messages import encode_defunct  # signing only: verifying needs no eth_account

        signature = bytes(account.sign_message(encode_defunct(self.canonical())).signature)
        signed = SignedAnnouncement(self, signature)
        if len(signed.to_bytes()) > MAX_ANNOUNCEMENT:
            raise MalformedAnnouncement(f"signed announcement over {MAX_ANNOUNCEMENT} bytes")
        return signed

    def with_time(self, issued_at: int | None = None) -> Announcement:
        """A copy issued now (or at ``issued_at``)."""
        data = self.to_json()
        data["issued_at"] = int(time.time()) if issued_at is None else issued_at
        return Announcement.from_json(data)


@dataclass(frozen=True, slots=True)
class SignedAnnouncement:
    announcement: Announcement
    signature: bytes  # 65 bytes r || s || v, EIP-191 ("\x19Ethereum Signed Message") over canonical()

    def to_bytes(self) -> bytes:
        obj = {"announcement": self.announcement.to_json(), "signature": "0x" + self.signature.hex()}
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> SignedAnnouncement:
        """Parse the wire form (limits and fields checked; the signature is NOT: call :meth:`verify`)."""
        if len(raw) > MAX_ANNOUNCEMENT:
            raise MalformedAnnouncement(f"announcement of {len(raw)} bytes (limit {MAX_ANNOUNCEMENT})")
        try:
            obj = json.loads(raw)
            sig_hex = obj["signature"]
            body = obj["announcement"]
            if not isinstance(sig_hex, str) or set(obj) != {"announcement", "signature"}:
                raise ValueError("expected exactly announcement and signature")
            signature = bytes.fromhex(sig_hex.removeprefix("0x"))
        except (ValueError, TypeError, KeyError) as err:
            raise MalformedAnnouncement(f"malformed announcement: {err}") from err
        if len(signature) != 65:
            raise MalformedAnnouncement(f"signature of {len(signature)} bytes (expected 65)")
        return cls(Announcement.from_json(body), signature)

    @classmethod
    def open(cls, raw: bytes) -> SignedAnnouncement:
        """:meth:`from_bytes` then :meth:`verify`: a record whose signature is its operator's."""
        signed = cls.from_bytes(raw)
        signed.verify()
        return signed

    def verify(self) -> str:
        """The operator address, if the signature is the operator's; else ``ForgedAnnouncement``."""
        try:
            signer = recover_signer(self.announcement.canonical(), self.signature)
        except Exception as err:  # eth_keys: a signature that is no valid point / recovery id
            raise ForgedAnnouncement(f"announcement signature does not recover: {err}") from err
        if signer.lower() != self.announcement.operator.lower():
            raise ForgedAnnouncement(f"announcement for {self.announcement.operator} signed by {signer}")
        return self.announcement.operator

    def newer_than(self, other: SignedAnnouncement) -> bool:
        """The DHT's order: higher ``issued_at`` wins; equal times, the higher wire bytes (deterministic)."""
        a, b = self.announcement.issued_at, other.announcement.issued_at
        return a > b or (a == b and self.to_bytes() > other.to_bytes())
