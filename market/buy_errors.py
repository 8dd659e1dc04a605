"""The errors of the lab's flows (:mod:`market.buyer`, :mod:`market.piece_buyer`); ``market.buyer``
re-exports them."""

from __future__ import annotations

from . import errors

__all__ = ["BadPieces", "BuyError", "KeyMismatch", "KeyNotDelivered", "LicenseNotUsable", "ManifestUnavailable"]


class BuyError(errors.MarketError):
    """A purchase or fetch could not be completed."""


class KeyNotDelivered(BuyError):
    """No key arrived (yet); ``refundable`` says whether the deadline passed."""

    def __init__(self, message: str, *, refundable: bool) -> None:
        super().__init__(message)
        self.refundable = refundable


class BadPieces(KeyNotDelivered):
    """Guardians delivered pieces that fail their commitments: proven on-chain (``disputePieces``:
    counted against them in ``badPieces``), the license waits for other guardians' pieces.
    ``guardians`` maps piece index -> guardian address."""

    def __init__(self, message: str, *, guardians: dict[int, str]) -> None:
        super().__init__(message, refundable=False)
        self.guardians = guardians


class KeyMismatch(BuyError):
    """The delivered key does not match the dataset's on-chain key commitment. ``refunded`` says
    whether the dispute went through (else the dispute window had closed)."""

    def __init__(self, message: str, *, refunded: bool) -> None:
        super().__init__(message)
        self.refunded = refunded


class LicenseNotUsable(BuyError):
    """The license is refunded, expired or its consent was revoked."""


class LicenseRefunded(LicenseNotUsable):
    """The license was refunded (no key in time, consent revoked before delivery, or a disputed key)."""


class LicenseExpired(LicenseNotUsable):
    """The license's term is over (``expires_at``, chain time)."""


class ConsentEnded(LicenseNotUsable):
    """The owner revoked consent and the license's terms are revocable."""


class ManifestUnavailable(BuyError):
    """No holder served a manifest matching the on-chain manifest hash."""
