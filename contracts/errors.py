"""Errors raised by the on-chain side: the chain client, its transactions and the contracts' named reverts.

::

    ContractsError
    ├── TermsError                 license terms or purposes that make no sense
    ├── DeploymentError            no contracts at the addresses given / wrong chain
    ├── DeliveryError              contracts.delivery: a key delivery could not be made or opened
    │   └── InvalidPoint           not a finite BN254 G1 point (or not a valid secret scalar)
    ├── SharingError               contracts.shamir: a key that cannot be split, pieces that cannot combine
    │   ├── KeyOutsideField        the key is not below the field prime (draw another key)
    │   └── PieceError             contracts.pieces: a sealed piece that does not open or match
    ├── AnnouncementError          contracts.announcements: a node announcement that cannot be used
    │   ├── MalformedAnnouncement  a field out of its limits, bad JSON, too long
    │   └── ForgedAnnouncement     the signature does not recover the announced operator
    └── ChainError                 anything that went wrong talking to the chain
        ├── ChainUnavailable       the JSON-RPC endpoint cannot be reached
        ├── TransactionTimeout     no receipt within the timeout
        ├── ReadOnlyConnection     a transaction asked of a reader (Chain.reader: reads over contracts.rpc only)
        ├── CallReverted           contracts.rpc: an eth_call answered with revert data (raised as its named error)
        └── ContractRevert         a contract refused; ``.error_name`` and ``.values`` decoded
            ├── AccessDenied       caller is not the owner / agent / provider
            ├── NotFound           unknown dataset, deal, license or share
            ├── ConsentError       consent revoked, purpose not allowed, dataset not servable
            ├── PaymentError       price, token, offer changed, stake and balance problems
            ├── ProofRejected      a storage proof that does not verify or is not due
            ├── StateError         right call, wrong moment (deadlines, already done...)
            ├── DeliveryRejected   a key-delivery dispute or claim refused (window, forged reveal, key valid)
            ├── InvalidInput       malformed arguments
            └── UnknownRevert      a revert with no custom error we know (panic, bare revert)

Each Solidity custom error has a class of the same name (``contracts.errors.ConsentIsRevoked``),
so callers can catch exactly what they expect. ``tests/market`` checks that every custom error in
the ABIs has its class here.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ContractsError(Exception):
    """Base of every error raised on purpose by :mod:`contracts` (no HTTP status: a caller maps it)."""


class TermsError(ContractsError, ValueError):
    """Invalid license terms or purpose."""


class DeploymentError(ContractsError):
    """The contracts are not where the deployment says, or it is for another chain."""


class AnnouncementError(ContractsError):
    """A node announcement that cannot be made or used (:mod:`contracts.announcements`)."""


class MalformedAnnouncement(AnnouncementError, ValueError):
    """A field out of its limits, malformed JSON, or a record over the size limit."""


class ForgedAnnouncement(AnnouncementError):
    """The signature does not recover the operator the announcement names."""


class ChainError(ContractsError):
    """Talking to the chain failed."""


class ChainUnavailable(ChainError):
    """The JSON-RPC endpoint could not be reached."""


class ReadOnlyConnection(ChainError):
    """A transaction was asked of a reader (``Chain.reader``): it holds no web3 to send with."""


class CallReverted(ChainError):
    """An ``eth_call`` answered with revert data (``contracts.rpc`` raises it as its named error)."""

    def __init__(self, data: str) -> None:
        super().__init__(f"execution reverted: {data[:74]}")
        self.data = data


class TransactionTimeout(ChainError):
    """A transaction was sent but no receipt came within the timeout."""

    def __init__(self, message: str, *, tx_hash: str) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash


class ContractRevert(ChainError):
    """A contract call reverted. ``error_name`` is the Solidity custom error, ``values`` its arguments."""

    error_name: ClassVar[str] = ""

    def __init__(self, message: str, *, values: dict[str, Any] | None = None, function: str = "") -> None:
        super().__init__(message)
        self.values = values or {}
        self.function = function


class AccessDenied(ContractRevert): ...


class NotFound(ContractRevert): ...


class ConsentError(ContractRevert): ...


class PaymentError(ContractRevert): ...


class ProofRejected(ContractRevert): ...


class StateError(ContractRevert): ...


class DeliveryRejected(ContractRevert):
    """A key-delivery dispute or payment claim that cannot go through (or a dispute showing the
    delivered key was right)."""


class InvalidInput(ContractRevert): ...


class UnknownRevert(ContractRevert):
    """Reverted without a custom error this client knows (a panic, a bare revert, out of gas)."""


def _define(base: type[ContractRevert], *names: str) -> dict[str, type[ContractRevert]]:
    out = {}
    for name in names:
        cls = type(name, (base,), {"error_name": name, "__doc__": f"Solidity custom error ``{name}``."})
        cls.__module__ = __name__
        out[name] = cls
    return out


REVERTS: dict[str, type[ContractRevert]] = {
    **_define(
        AccessDenied, "NotDatasetOwner", "NotDealOwner", "NotKeyReleaser", "NotProvider", "NotBuyer", "NotPendingOwner"
    ),
    **_define(AccessDenied, "NotMarket"),
    **_define(AccessDenied, "NotGuardian", "NotStakedOperator"),
    **_define(NotFound, "UnknownDataset", "UnknownDeal", "UnknownLicense", "InvalidShare"),
    **_define(
        ConsentError,
        "ConsentIsRevoked",
        "PurposeNotAllowed",
        "AlreadyRevoked",
        "DatasetNotServable",
        "PoolPurposeNotAllowed",
    ),
    **_define(
        DeliveryRejected,
        "DeliveryMismatch",
        "InvalidReveal",
        "DeliveryIsValid",
        "NotDisputable",
        "DisputeWindowClosed",
        "DisputeWindowOpen",
        "PiecesAreValid",
    ),
    **_define(
        PaymentError,
        "PriceAboveLimit",
        "TermsVersionMismatch",
        "PaymentTokenMismatch",
        "PoolPaymentTokenMismatch",
        "UnsupportedToken",
        "SafeERC20FailedOperation",
        "NothingToWithdraw",
        "StakeTooLow",
        "StakeLocked",
        "ExitNotReady",
        "ERC20InsufficientAllowance",
        "ERC20InsufficientBalance",
        "ERC20InvalidApprover",
        "ERC20InvalidReceiver",
        "ERC20InvalidSender",
        "ERC20InvalidSpender",
    ),
    **_define(
        ProofRejected, "InvalidProof", "MalformedProofs", "WrongEpoch", "AlreadyProven", "NotDue", "SeedNotYetAvailable"
    ),
    **_define(
        StateError,
        "NotPending",
        "DeliveryDeadlinePassed",
        "RefundNotYetAllowed",
        "DeadlineNotPassed",
        "ReportWindowClosed",
        "DealOver",
        "DealNotOver",
        "AlreadySettled",
        "AlreadyAccepted",
        "NotCommitted",
        "AlreadyCommitted",
        "AlreadyRegistered",
        "NotRegistered",
        "OperatorIsLeaving",
        "ShareNotReplaceable",
        "ManifestAlreadyRegistered",
        "ReentrancyGuardReentrantCall",
        "PieceAlreadyDelivered",
        "GuardianBanned",
        "MarketAlreadySet",
    ),
    **_define(
        InvalidInput,
        "InvalidBuyerKey",
        "InvalidDeliveryPoint",
        "InvalidRegistration",
        "LicenseDurationTooLong",
        "InvalidParameters",
        "ZeroAddress",
        "DuplicateProvider",
        "WrongProviderCount",
        "SizeMismatch",
        "InvalidGuardianKey",
        "InvalidThreshold",
        "LengthMismatch",
        "DuplicateGuardian",
        "NoGuardianKey",
        "FeeTooHigh",
        "AnnouncementTooLong",
    ),
    # TestToken's EIP-2612 permit (OpenZeppelin ERC20Permit: ECDSA, Nonces, ShortStrings)
    **_define(
        AccessDenied,
        "ERC2612InvalidSigner",
        "ECDSAInvalidSignature",
        "ECDSAInvalidSignatureLength",
        "ECDSAInvalidSignatureS",
    ),
    **_define(StateError, "ERC2612ExpiredSignature", "InvalidAccountNonce"),
    **_define(InvalidInput, "InvalidShortString", "StringTooLong"),
    # DataPools (contracts/src/DataPools.sol); its other errors share LicenseManager's names
    **_define(AccessDenied, "NotCurator", "NotContributor", "NotPoolKeyReleaser", "NotPoolBuyer", "SelfAcceptance"),
    **_define(NotFound, "UnknownPool", "UnknownContribution", "UnknownPoolLicense"),
    **_define(ConsentError, "ContributionNotInLicense", "ContributionWithdrawnFromLicense", "EmptyPool"),
    **_define(StateError, "AlreadyContributed", "WrongContributionStatus", "AlreadyDelivered", "PoolLicenseExpired"),
    **_define(InvalidInput, "InvalidPool", "InvalidWeight"),
}


def revert_class(name: str) -> type[ContractRevert]:
    """The class for Solidity custom error ``name`` (UnknownRevert if there is none)."""
    return REVERTS.get(name, UnknownRevert)


def __getattr__(name: str) -> type[ContractRevert]:
    try:
        return REVERTS[name]
    except KeyError:
        raise AttributeError(name) from None
