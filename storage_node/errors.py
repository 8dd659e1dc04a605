"""Errors raised by the storage node and its client (errors defined next to their code are marked
with their module)::

    NodeError
    ├── RangeNotSatisfiable        a Range the share cannot satisfy (416, with ``Content-Range: bytes */size``)
    ├── Busy                       no upload slot or connection free now (503, with ``Retry-After``)
    ├── UploadAborted              the client went away or stopped sending mid-upload (logged on one line)
    ├── StoreError                 the share store refused or failed
    │   ├── ShareNotFound          no such share (or it was quarantined)
    │   ├── ShareExists            a share is already stored at that place
    │   ├── QuotaExceeded          not enough capacity left
    │   ├── UploadMismatch         bytes received do not match the declared size or root
    │   ├── CorruptShare           bytes on disk no longer match their root: quarantined
    │   ├── DiskFull               the disk itself ran out of space (507), whatever the configured capacity
    │   ├── BadManifest            a manifest that is malformed or not the dataset's
    │   ├── SchemaError            the index database is newer than this code
    │   └── NotPending             no pending upload to activate (expired, never sent, or lost at a restart)
    ├── KeyFileError               storage_node.identity: the operator key file is unreadable or unsafe
    ├── JoinError                  storage_node.membership: cannot stake or announce as asked
    │   └── InsufficientFunds      the wallet lacks the tokens to stake or the ETH for gas
    ├── RecordError                storage_node.p2p.records: a peer record that is malformed or badly signed
    ├── P2PError                   storage_node.p2p.host: the libp2p host could not start or answer
    ├── RemoteError                storage_node.client: the node answered with an error (its status and code)
    ├── NodeUnavailable            storage_node.client: the node could not be reached (after retries)
    │   └── BrokenResponse         it cut its answer short: that holder failed this read
    └── OrderError                 a storage order is malformed, expired, replayed or badly signed
        ├── OrderExpired           past its expiry
        ├── BadSignature           not signed by the key it names
        ├── WrongNode              addressed to another node
        ├── Replayed               a nonce this node has already seen
        ├── BadLayout              block_size/leaf_size outside the node's bounds or not a valid layout
        ├── NotAuthorized          the signer may not place it (not the deal's owner)
        ├── BelowAsk               the deal pays less than this node's announced ask (402)
        ├── UnknownDeal            no such deal on-chain, or it does not match the order
        │   └── NotCommitted       a draft deal: no dataset or root committed yet (409)
        ├── WrongRoot              the share root is not part of the deal's commitment
        └── StillOwed              a delete order for a share the chain still asks this node to prove

Each carries an HTTP status, a stable ``code`` used in JSON error bodies, and the response headers
that status needs (:meth:`NodeError.headers`).
"""

from __future__ import annotations


class NodeError(Exception):
    status = 500
    code = "internal"

    def headers(self) -> dict[str, str]:
        """Headers the answer to this error must carry (e.g. ``Retry-After`` on a 503)."""
        return {}


class RangeNotSatisfiable(NodeError):
    status, code = 416, "requested_range_not_satisfiable"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size

    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class Busy(NodeError):
    status, code = 503, "busy"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class UploadAborted(NodeError):
    status, code = 400, "upload_aborted"


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


class DiskFull(StoreError):
    status, code = 507, "insufficient_storage"


class BadManifest(StoreError):
    status, code = 422, "bad_manifest"


class SchemaError(StoreError):
    status, code = 500, "schema"


class NotPending(StoreError):
    status, code = 404, "not_pending"


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


class BadLayout(OrderError):
    status, code = 422, "bad_layout"


class NotAuthorized(OrderError):
    status, code = 403, "not_authorized"


class BelowAsk(OrderError):
    """The deal pays less per share per epoch than this node's announced ask."""

    status, code = 402, "below_ask"


class UnknownDeal(OrderError):
    status, code = 422, "unknown_deal"


class NotCommitted(UnknownDeal):
    status, code = 409, "deal_not_committed"


class WrongRoot(OrderError):
    status, code = 422, "wrong_root"


class StillOwed(OrderError):
    """A delete order for a share the chain still asks this node to prove."""

    status, code = 409, "share_still_owed"
