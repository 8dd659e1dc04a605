"""Errors raised by the owner's and the lab's flows (:mod:`market`).

Each flow module defines its own errors under :class:`MarketError`; the chain's errors (reverts,
timeouts, deployments, terms) are :mod:`contracts.errors` and the nodes' are :mod:`storage_node.errors`::

    MarketError
    ├── BuyError                   market.buyer: a license or fetch that cannot go through
    │   ├── KeyNotDelivered        no key arrived (yet); ``refundable`` once the deadline passed
    │   │   └── BadPieces          guardians' pieces failed their commitments (proven on-chain, named)
    │   ├── KeyMismatch            the delivered key fails the on-chain key commitment (disputed)
    │   ├── LicenseNotUsable       refunded, expired, or its consent was revoked
    │   │   ├── LicenseRefunded    market.buyer: refunded (no key in time, revoked before delivery, disputed)
    │   │   ├── LicenseExpired     market.buyer: the license's term is over
    │   │   └── ConsentEnded       market.buyer: consent revoked and the terms are revocable
    │   ├── ManifestUnavailable    no holder served a manifest matching the on-chain hash
    │   └── ReaderError            market.reader: no such file, not a file, or bytes not rebuildable
    ├── PublishError               market.placement: placement or upload failed (re-exported by market.publisher)
    │   └── NotEnoughNodes         fewer qualifying nodes than shares; says how many and why each other was not
    ├── RepairError                market.repair: a deal's lost shares could not be rebuilt or placed
    ├── KeystoreError              market.keystore: missing, locked or unreadable keystore
    │   └── WrongPassphrase
    ├── DirectoryError             market.directory: no usable node list
    ├── PoolError                  market.pools: a pool flow that cannot go on (no key yet, a key that does not open)
    ├── GuardianError              market.guardians: guardians that cannot be picked or set
    │   └── NotEnoughGuardians     fewer eligible guardians (announced, staked, distinct /24) than asked
    ├── TermsUnavailable           market.offers: the offer's terms cannot be read
    └── ReceiptError               market.receipts: a consent receipt that does not verify

    TimeoutError
    └── ShareSlow                  market.remote_source: a holder has not answered a read yet (the
        │                          decoder asks the others, then this one again; not a MarketError)
        └── ShareLagging           a read is behind its holders' p95 latency: a spare is asked (a hedge;
                                   also an erasure.errors.Lagging)
"""

from __future__ import annotations


class MarketError(Exception):
    """Base of every error raised on purpose by :mod:`market` (no HTTP status: a caller maps it)."""
