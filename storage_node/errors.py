"""Errors raised by the storage node.

::

    NodeError
    ├── StoreError                 the shard store refused or failed
    │   ├── ShareNotFound          no such share (or it was quarantined)
    │   ├── ShareExists            a share is already stored at that place
    │   ├── QuotaExceeded          not enough capacity left
    │   ├── UploadMismatch         bytes received do not match the declared size or root
    │   ├── CorruptShare           bytes on disk no longer match their root: quarantined
    │   ├── BadManifest            a manifest that is malformed or not the dataset's
    │   └── SchemaError            the index database is newer than this code
    └── OrderError                 a storage order is malformed, expired, replayed or badly signed
        ├── NotAuthorized          the signer may not place it (not the deal's owner)
        ├── UnknownDeal            no such deal on-chain, or it does not match the order
        ├── WrongRoot              the share root is not part of the deal's commitment
        └── StillOwed              a delete order for a share the chain still asks this node to prove

Each carries an HTTP status and a stable ``code`` used in JSON error bodies.
"""

from __future__ import annotations


class NodeError(Exception):
    status = 500
    code = "internal"


class StoreError(NodeError):
    pass


class ShareNotFound(StoreError):
    status, code = 404, "share_not_found"


class ShareExists(StoreError):
    status, code = 409, "share_exists"


class QuotaExceeded(StoreError):
    status, code = 507, "insufficient_storage"


class UploadMismatch(StoreError):
    status, code = 422, "upload_mismatch"


class CorruptShare(StoreError):
    status, code = 503, "share_corrupted"


class BadManifest(StoreError):
    status, code = 422, "bad_manifest"


class SchemaError(StoreError):
    status, code = 500, "schema"


class OrderError(NodeError):
    status, code = 400, "bad_order"


class OrderExpired(OrderError):
    status, code = 403, "order_expired"


class BadSignature(OrderError):
    status, code = 401, "bad_signature"


class WrongNode(OrderError):
    status, code = 403, "wrong_node"


class Replayed(OrderError):
    status, code = 409, "replayed"


class NotAuthorized(OrderError):
    status, code = 403, "not_authorized"


class UnknownDeal(OrderError):
    status, code = 422, "unknown_deal"


class WrongRoot(OrderError):
    status, code = 422, "wrong_root"


class StillOwed(OrderError):
    """A delete order for a share the chain still asks this node to prove."""

    status, code = 409, "share_still_owed"
