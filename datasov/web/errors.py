"""Failures as pages a person can act on: what happened, in words, and what to do next.

:func:`problem` turns an expected failure (chain down, a contract refusal, a key not yet
delivered...) into a :class:`Problem`; the app's error middleware renders it as ``error.html``
with its HTTP status. The contract's refusal keeps its Solidity name beside the sentence.
Anything unexpected becomes a 500 page that says so, without a traceback.

The web app raises no error tree of its own: it shows those of :mod:`contracts.errors`,
:mod:`market.errors`, :mod:`storage_node.errors` and :mod:`erasure.errors`, and aiohttp's
``HTTPException`` for requests it refuses (``auth.NotLoggedIn``, ``auth.CsrfRefused``).
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import errors
from datasov.cli import refusals
from erasure.errors import ErasureError, IntegrityError, NotEnoughShares
from market import buyer
from market.errors import MarketError
from storage_node.errors import NodeError


@dataclass(frozen=True)
class Problem:
    status: int
    title: str
    message: str
    hint: str = ""
    name: str = ""


def problem(err: BaseException) -> Problem | None:
    """The page for an expected failure; None for anything else (a bug: 500)."""
    name = type(err).__name__
    if isinstance(err, errors.ChainUnavailable):
        return Problem(
            503,
            "The chain cannot be reached",
            str(err),
            "Is the chain running? Start it (`datasov devnet up`) or check the rpc URL in your home's "
            "config.json, then reload this page.",
            name,
        )
    if isinstance(err, buyer.KeyNotDelivered):
        hint = (
            "The delivery deadline has passed: take your payment back with the Refund button on My licenses."
            if err.refundable
            else "The owner's key agent has not delivered the key yet; reload later."
        )
        return Problem(409, "The key has not been delivered yet", str(err), hint, name)
    if isinstance(err, buyer.KeyMismatch):
        return Problem(409, "The delivered key is wrong", str(err), "", name)
    if isinstance(err, errors.ContractRevert):
        return Problem(
            409,
            "The contract refused",
            refusals.describe(err),
            "Nothing was changed on-chain.",
            err.error_name or name,
        )
    if isinstance(err, NotEnoughShares | IntegrityError):
        return Problem(502, "Too few good shares right now", str(err), "Try again later.", name)
    if isinstance(err, MarketError | errors.ContractsError | NodeError | ErasureError):
        return Problem(400, "That did not work", str(err), "", name)
    return None


def explain(err: BaseException) -> str:
    """One line for a failed background job."""
    found = problem(err)
    if found is None:
        return f"unexpected error: {type(err).__name__}: {err}"
    return f"{found.title}: {found.message}" + (f" ({found.name})" if found.name else "")
