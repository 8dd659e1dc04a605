"""The terms of any past offer of a dataset, re-derived from the chain (not from anyone's copy).

The registry keeps only the latest terms in storage; a license names the version it was bought
under (``termsVersion``). Every version is announced by an ``OfferUpdated(datasetId, ...,
termsVersion, termsHash)`` event, emitted by the ``register`` or ``updateOffer`` call that set
it; the full structured terms are in that call's calldata. So version v of dataset d is: the
OfferUpdated log for (d, v), the transaction that emitted it, its input decoded with the registry
ABI, the ``terms`` argument, and a check that its ``termsHash`` is the one the event announced.

A streaming publish registers through the deployment's StorageMarket (``registerAndCommit``,
which calls the registry's ``registerFor``: only that market may): its calldata is decoded with the
market's ABI, the same ``terms`` argument.

Trust: the chain's logs and transactions (as served by the RPC endpoint). Limit: the transaction
must call the registry or the deployment's market directly (an EOA, not a multisig or another
contract); otherwise the calldata is neither's and the terms are reported as not re-derivable,
never guessed.
"""

from __future__ import annotations

from typing import Any

from contracts.chain import Chain
from contracts.terms import LicenseTerms

from .errors import MarketError

_SETTERS: tuple[str, ...] = ("register", "updateOffer")
_MARKET_SETTERS: tuple[str, ...] = ("registerAndCommit",)


class TermsUnavailable(MarketError):
    """The terms of an offer version cannot be re-derived from the chain."""


def _abi_terms(value: Any) -> tuple[Any, ...]:
    """A decoded LicenseTerms argument (tuple, or mapping of named fields) as an ABI tuple."""
    if isinstance(value, dict):
        return tuple(value.values())
    return tuple(value)


async def terms_of_version(chain: Chain, dataset_id: int, version: int) -> LicenseTerms:
    """The structured terms dataset ``dataset_id`` was offered under in ``version``."""
    logs = await chain.registry.events.OfferUpdated().get_logs(
        from_block=chain.deployment.deployed_block, argument_filters={"datasetId": dataset_id}
    )
    found = [log for log in logs if int(log["args"]["termsVersion"]) == version]
    if len(found) != 1:
        raise TermsUnavailable(f"dataset {dataset_id} has {len(found)} offers of terms version {version} on-chain")
    log = found[0]
    tx = await chain.w3.eth.get_transaction(log["transactionHash"])
    to = str(tx.get("to") or "").lower()
    if to == chain.deployment.registry.lower():
        contract, setters = chain.registry, _SETTERS
    elif to == chain.deployment.storage_market.lower():
        contract, setters = chain.storage_market, _MARKET_SETTERS
    else:
        raise TermsUnavailable(
            f"terms version {version} of dataset {dataset_id} was set through another contract; "
            "its calldata cannot be decoded"
        )
    try:
        fn, args = contract.decode_function_input(tx["input"])
    except ValueError as err:
        raise TermsUnavailable(f"the transaction that set terms version {version} does not decode: {err}") from err
    if fn.fn_name not in setters or "terms" not in args:
        raise TermsUnavailable(f"terms version {version} was set by {fn.fn_name}, not by {' or '.join(setters)}")
    if fn.fn_name == "updateOffer" and int(args["datasetId"]) != dataset_id:
        raise TermsUnavailable(f"the transaction that set terms version {version} updates another dataset")
    terms = LicenseTerms.from_abi(_abi_terms(args["terms"]))
    if terms.terms_hash != bytes(log["args"]["termsHash"]):
        raise TermsUnavailable(f"the calldata of terms version {version} does not match the event's termsHash")
    return terms
