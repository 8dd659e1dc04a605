"""Signed storage orders: who asks a node to store which share, and proof that they did.

An order is canonical JSON (sorted keys, no spaces) with a version and a domain tag, signed with
the client's Ethereum key (EIP-191 personal message). It travels in two HTTP headers::

    X-Datasov-Order:      base64url(canonical JSON)
    X-Datasov-Signature:  0x-prefixed 65-byte signature

The node checks it before reading a byte of the body: version, domain, a bounded block layout, that it
is addressed to this node, the path matches, it has not expired, the signature recovers, and its nonce
was never used.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from contracts.signatures import recover_signer
from erasure import merkle
from erasure.errors import ParameterError

from .errors import BadLayout, BadSignature, OrderError, OrderExpired, WrongNode

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DOMAIN = "datasov/storage-order/v1"
DELETE_DOMAIN = "datasov/delete-order/v1"
DELETE_HEADER = "X-Datasov-Delete"
PENDING_DOMAIN = "datasov/pending-order/v1"
PENDING_HEADER = "X-Datasov-Pending"
VERSION = 1
MAX_ORDER_BYTES = 4096
MAX_VALIDITY = 24 * 3600
MIN_LEAF_SIZE = 64
MAX_LEAF_SIZE = 64 * 1024
MAX_BLOCK_SIZE = 16 * 1024 * 1024  # the pipeline's own bound (erasure.pipeline.MAX_BLOCK_SIZE)
ORDER_HEADER = "X-Datasov-Order"
SIGNATURE_HEADER = "X-Datasov-Signature"


@dataclass(frozen=True, slots=True)
class StorageOrder:
    node: str  # operator address of the node asked to store
    dataset: str  # 64 hex characters: the dataset's manifest hash
    index: int
    share_root: str  # 64 hex characters
    size: int
    leaf_size: int
    block_size: int
    deal_id: int
    expiry: int  # unix seconds
    nonce: str
    share_proof: tuple[str, ...] = ()  # hex siblings: share root -> the deal's commitment root
    version: int = VERSION
    domain: str = DOMAIN

    @classmethod
    def new(
        cls,
        *,
        node: str,
        dataset: str,
        index: int,
        share_root: bytes,
        size: int,
        leaf_size: int,
        block_size: int,
        deal_id: int = 0,
        valid_for: int = 3600,
        share_proof: Sequence[bytes] = (),
    ) -> StorageOrder:
        return cls(
            node=node,
            dataset=dataset,
            index=index,
            share_root=share_root.hex(),
            size=size,
            leaf_size=leaf_size,
            block_size=block_size,
            deal_id=deal_id,
            expiry=int(time.time()) + valid_for,
            nonce=secrets.token_hex(16),
            share_proof=tuple(h.hex() for h in share_proof),
        )

    def canonical(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def sign(self, account: LocalAccount) -> str:
        from eth_account.messages import encode_defunct  # signing only: verifying needs no eth_account

        signed = account.sign_message(encode_defunct(self.canonical()))
        return "0x" + bytes(signed.signature).hex()

    def headers(self, account: LocalAccount) -> dict[str, str]:
        return {
            ORDER_HEADER: base64.urlsafe_b64encode(self.canonical()).decode(),
            SIGNATURE_HEADER: self.sign(account),
        }


@dataclass(frozen=True, slots=True)
class DeleteOrder:
    """The uploader asks a node to delete a share (owner-ordered deletion)."""

    node: str
    dataset: str
    index: int
    expiry: int
    nonce: str
    version: int = VERSION
    domain: str = DELETE_DOMAIN

    @classmethod
    def new(cls, *, node: str, dataset: str, index: int, valid_for: int = 600) -> DeleteOrder:
        return cls(node, dataset, index, int(time.time()) + valid_for, secrets.token_hex(16))

    def canonical(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def headers(self, account: LocalAccount) -> dict[str, str]:
        from eth_account.messages import encode_defunct  # signing only: verifying needs no eth_account

        signed = account.sign_message(encode_defunct(self.canonical()))
        return {
            DELETE_HEADER: base64.urlsafe_b64encode(self.canonical()).decode(),
            SIGNATURE_HEADER: "0x" + bytes(signed.signature).hex(),
        }


@dataclass(frozen=True, slots=True)
class PendingOrder:
    """The owner of a draft deal asks a node to receive share ``index`` before its root is known.

    The node holds the bytes pending (never served, never proven, not in its index) until an
    ordinary :class:`StorageOrder` for the same deal and share activates them against the root
    committed on-chain; pending bytes not activated in time are deleted (docs/streaming-publish.md).
    """

    node: str
    deal_id: int
    index: int
    size: int
    leaf_size: int
    block_size: int
    expiry: int
    nonce: str
    version: int = VERSION
    domain: str = PENDING_DOMAIN

    @classmethod
    def new(
        cls, *, node: str, deal_id: int, index: int, size: int, leaf_size: int, block_size: int, valid_for: int = 3600
    ) -> PendingOrder:
        return cls(
            node, deal_id, index, size, leaf_size, block_size, int(time.time()) + valid_for, secrets.token_hex(16)
        )

    def canonical(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def headers(self, account: LocalAccount) -> dict[str, str]:
        from eth_account.messages import encode_defunct  # signing only: verifying needs no eth_account

        signed = account.sign_message(encode_defunct(self.canonical()))
        return {
            PENDING_HEADER: base64.urlsafe_b64encode(self.canonical()).decode(),
            SIGNATURE_HEADER: "0x" + bytes(signed.signature).hex(),
        }


_PENDING_FIELDS: dict[str, type] = {
    "node": str,
    "deal_id": int,
    "index": int,
    "size": int,
    "leaf_size": int,
    "block_size": int,
    "expiry": int,
    "nonce": str,
    "version": int,
    "domain": str,
}


def parse_pending(header: str | None) -> PendingOrder:
    """Decode and type-check a pending-upload order header (the signature is checked by :func:`verify`)."""
    if not header or len(header) > MAX_ORDER_BYTES:
        raise OrderError(f"missing or oversized {PENDING_HEADER} header")
    try:
        obj: Any = json.loads(base64.urlsafe_b64decode(header.encode()))
    except (ValueError, binascii.Error) as err:
        raise OrderError(f"malformed pending order: {err}") from err
    if not isinstance(obj, dict) or set(obj) != set(_PENDING_FIELDS):
        raise OrderError("pending order must have exactly the fields " + ", ".join(sorted(_PENDING_FIELDS)))
    for name, kind in _PENDING_FIELDS.items():
        if not isinstance(obj[name], kind) or (kind is int and isinstance(obj[name], bool)):
            raise OrderError(f"pending order field {name!r} must be {kind.__name__}")
    if (obj["version"], obj["domain"]) != (VERSION, PENDING_DOMAIN) or len(obj["nonce"]) > 64:
        raise OrderError("unsupported pending order version/domain or malformed nonce")
    if obj["size"] < 1 or obj["deal_id"] < 1 or obj["index"] < 0:
        raise OrderError("pending order needs size >= 1, deal_id >= 1 and index >= 0")
    check_layout(obj["block_size"], obj["leaf_size"])
    return PendingOrder(**obj)


def parse_delete(header: str | None) -> DeleteOrder:
    if not header or len(header) > MAX_ORDER_BYTES:
        raise OrderError(f"missing or oversized {DELETE_HEADER} header")
    try:
        obj: Any = json.loads(base64.urlsafe_b64decode(header.encode()))
        order = DeleteOrder(**obj)
    except (ValueError, TypeError, binascii.Error) as err:
        raise OrderError(f"malformed delete order: {err}") from err
    if (
        (order.version, order.domain) != (VERSION, DELETE_DOMAIN)
        or not isinstance(order.index, int)
        or not all(isinstance(v, str) for v in (order.node, order.dataset, order.nonce))
        or not isinstance(order.expiry, int)
        or len(order.nonce) > 64
    ):
        raise OrderError("malformed delete order")
    return order


_FIELDS: dict[str, type] = {
    "share_proof": list,
    "node": str,
    "dataset": str,
    "index": int,
    "share_root": str,
    "size": int,
    "leaf_size": int,
    "block_size": int,
    "deal_id": int,
    "expiry": int,
    "nonce": str,
    "version": int,
    "domain": str,
}


def parse(header: str | None) -> StorageOrder:
    """Decode and type-check an order header (the signature is checked by :func:`verify`)."""
    if not header:
        raise OrderError(f"missing {ORDER_HEADER} header")
    if len(header) > MAX_ORDER_BYTES:
        raise OrderError("order too large")
    try:
        obj: Any = json.loads(base64.urlsafe_b64decode(header.encode()))
    except (ValueError, binascii.Error) as err:
        raise OrderError(f"malformed order: {err}") from err
    if not isinstance(obj, dict) or set(obj) != set(_FIELDS):
        raise OrderError("order must have exactly the fields " + ", ".join(sorted(_FIELDS)))
    for name, kind in _FIELDS.items():
        if not isinstance(obj[name], kind) or (kind is int and isinstance(obj[name], bool)):
            raise OrderError(f"order field {name!r} must be {kind.__name__}")
    if obj["version"] != VERSION or obj["domain"] != DOMAIN:
        raise OrderError(f"unsupported order version/domain {obj['version']}/{obj['domain']!r}")
    if len(obj["share_root"]) != 64 or len(obj["nonce"]) > 64:
        raise OrderError("malformed share_root or nonce")
    proof = obj["share_proof"]
    if len(proof) > 8 or not all(isinstance(h, str) and len(h) == 64 for h in proof):
        raise OrderError("share_proof must be at most 8 hashes of 64 hex characters")
    try:
        for h in (obj["share_root"], *proof):
            bytes.fromhex(h)
    except ValueError as err:
        raise OrderError("share_root or share_proof is not hex") from err
    check_layout(obj["block_size"], obj["leaf_size"])
    return StorageOrder(**{**obj, "share_proof": tuple(proof)})


def check_layout(block_size: int, leaf_size: int) -> None:
    """Leaves of ``MIN_LEAF_SIZE..MAX_LEAF_SIZE`` bytes, blocks of at most ``MAX_BLOCK_SIZE`` that are
    a power-of-two number of leaves; else :class:`BadLayout` (422). Bounds what one read may hash."""
    if not MIN_LEAF_SIZE <= leaf_size <= MAX_LEAF_SIZE:
        raise BadLayout(f"leaf_size {leaf_size} outside [{MIN_LEAF_SIZE}, {MAX_LEAF_SIZE}]")
    if not 0 < block_size <= MAX_BLOCK_SIZE:
        raise BadLayout(f"block_size {block_size} outside [1, {MAX_BLOCK_SIZE}]")
    try:
        merkle.check_block_layout(block_size, leaf_size)
    except ParameterError as err:
        raise BadLayout(str(err)) from err


def verify(
    order: StorageOrder | DeleteOrder | PendingOrder, signature: str | None, *, node: str, now: float | None = None
) -> str:
    """Check addressing, expiry and signature; returns the signer's address."""
    now = time.time() if now is None else now
    if order.node.lower() != node.lower():
        raise WrongNode(f"order is for {order.node}, this node is {node}")
    if order.expiry <= now:
        raise OrderExpired("order expired")
    if order.expiry > now + MAX_VALIDITY:
        raise OrderError(f"order valid for more than {MAX_VALIDITY} s")
    if not signature:
        raise BadSignature(f"missing {SIGNATURE_HEADER} header")
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        return recover_signer(order.canonical(), raw)
    except Exception as err:  # eth_keys raises several types for malformed signatures
        raise BadSignature(f"signature does not verify: {err}") from err
