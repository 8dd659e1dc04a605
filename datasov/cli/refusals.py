"""Contract refusals in words: ``PurposeNotAllowed(datasetId=2, purpose=1)`` becomes
"dataset 2 does not allow ai_generative_training".

:func:`describe` takes a :class:`~contracts.errors.ContractRevert` (its Solidity error name and
decoded arguments) and returns one sentence a user can act on: purposes by name, deadlines as
local times, token amounts in tokens. An error without an entry here keeps its raw form.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from contracts.errors import ContractRevert
from contracts.terms import Purpose

from .ui import tokens

_STATUS = {0: "unknown", 1: "waiting for its key", 2: "delivered", 3: "refunded", 4: "rejected (wrong key, refunded)"}


def local_time(timestamp: int) -> str:
    """A unix time as this machine's local time: '2026-12-01 14:05:09 CET'."""
    moment = datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.UTC).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def purpose_name(value: Any) -> str:
    try:
        return Purpose(int(value)).name.lower()
    except (ValueError, TypeError):
        return f"purpose {value}"


def _status(value: Any) -> str:
    return _STATUS.get(int(value), f"status {value}")


Words = Callable[[dict[str, Any]], str]

_WORDS: dict[str, Words] = {
    "PurposeNotAllowed": lambda v: f"dataset {v['datasetId']} does not allow {purpose_name(v['purpose'])}",
    "PoolPurposeNotAllowed": lambda v: f"pool {v['poolId']} does not allow {purpose_name(v['purpose'])}",
    "PoolPaymentTokenMismatch": lambda v: (
        f"pool {v['poolId']} is now priced in token {v['current']}, not {v['expected']}"
    ),
    "ConsentIsRevoked": lambda v: f"the owner of dataset {v['datasetId']} has revoked consent",
    "AlreadyRevoked": lambda v: f"consent for dataset {v['datasetId']} is already revoked",
    "DatasetNotServable": lambda v: f"dataset {v['datasetId']} has no storage deal that can serve it",
    "UnknownDataset": lambda v: f"there is no dataset {v['datasetId']}",
    "UnknownLicense": lambda v: f"there is no license {v['licenseId']}",
    "UnknownDeal": lambda v: f"there is no storage deal {v['dealId']}",
    "NotDatasetOwner": lambda v: f"dataset {v['datasetId']} belongs to another account, not {v['caller']}",
    "NotDealOwner": lambda v: f"storage deal {v['dealId']} belongs to another account, not {v['caller']}",
    "NotBuyer": lambda v: f"license {v['licenseId']} was bought by another account, not {v['caller']}",
    "NotKeyReleaser": lambda v: f"{v['caller']} may not release keys for dataset {v['datasetId']}",
    "PriceAboveLimit": lambda v: (
        f"the price is {tokens(v['price'])} tokens, above your limit of {tokens(v['maxPrice'])}"
    ),
    "TermsVersionMismatch": lambda v: (
        f"the offer for dataset {v['datasetId']} changed: you agreed to version "
        f"{v['expected']}, it is now version {v['current']} (see `datasov show {v['datasetId']}`)"
    ),
    "PaymentTokenMismatch": lambda v: (
        f"dataset {v['datasetId']} is now priced in token {v['current']}, not {v['expected']}"
    ),
    "NotPending": lambda v: f"license {v['licenseId']} is {_status(v['status'])}, not waiting for its key",
    "DeliveryDeadlinePassed": lambda v: f"the key for license {v['licenseId']} was due by {local_time(v['deadline'])}",
    "RefundNotYetAllowed": lambda v: (
        f"license {v['licenseId']} can be refunded only after "
        f"{local_time(v['deadline'])}, if its key has not come by then"
    ),
    "DisputeWindowClosed": lambda v: (
        f"the dispute window of license {v['licenseId']} closed at {local_time(v['disputeDeadline'])}"
    ),
    "DisputeWindowOpen": lambda v: (
        f"license {v['licenseId']} can still be disputed until {local_time(v['disputeDeadline'])}"
    ),
    "NotDisputable": lambda v: f"license {v['licenseId']} is {_status(v['status'])}: nothing to dispute",
    "NothingToWithdraw": lambda v: "there is nothing to withdraw",
    "StakeTooLow": lambda v: f"the stake is {tokens(v['stake'])} tokens, {tokens(v['required'])} are required",
    "DealOver": lambda v: f"storage deal {v['dealId']} is over",
    "DealNotOver": lambda v: f"storage deal {v['dealId']} runs until epoch {v['endEpoch']}",
    "ERC20InsufficientBalance": lambda v: (
        f"the balance is {tokens(v['balance'])} tokens, {tokens(v['needed'])} are needed"
    ),
    "LicenseDurationTooLong": lambda v: f"a license may last at most {v['maxDuration']} s, not {v['duration']} s",
}


def describe(err: ContractRevert) -> str:
    """One sentence for a contract refusal (its raw form when there is no wording or it does not fit)."""
    words = _WORDS.get(err.error_name)
    if words is None:
        return str(err)
    try:
        return words(err.values)
    except (KeyError, ValueError, TypeError, OverflowError):
        return str(err)


def to_json(err: ContractRevert) -> dict[str, Any]:
    """The refusal for ``--json``: the error's name and arguments kept, the sentence beside them."""
    return {
        "name": err.error_name or type(err).__name__,
        "message": describe(err),
        "values": {k: v.hex() if isinstance(v, bytes) else v for k, v in err.values.items()},
        "function": err.function,
    }
