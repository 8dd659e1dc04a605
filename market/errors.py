"""Errors raised by the owner's and the lab's flows (:mod:`market`).

Each flow module defines its own errors under :class:`MarketError`; the chain's errors (reverts,
timeouts, deployments, terms) are :mod:`contracts.errors` and the nodes' are :mod:`storage_node.errors`::

    MarketError
    ├── BuyError                   market.buyer: a license or fetch that cannot go through
    │   └── ManifestUnavailable    no holder served a manifest matching the on-chain hash
    ├── PublishError               market.publisher: placement or upload failed
    ├── KeystoreError              market.keystore: missing, locked or unreadable keystore
    │   └── WrongPassphrase
    ├── DirectoryError             market.directory: no usable node list
    ├── TermsUnavailable           market.offers: the offer's terms cannot be read
    └── ReceiptError               market.audit: a consent receipt that does not verify
"""

from __future__ import annotations


class MarketError(Exception):
    """Base of every error raised on purpose by :mod:`market` (no HTTP status: a caller maps it)."""
