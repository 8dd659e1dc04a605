"""What the owner's irreversible steps do to the licenses already sold, in the one set of words
``datasov consent revoke`` / ``datasov storage end`` print before asking and the web app's
confirmation pages list (:mod:`datasov.web.views_owner`)."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.chain import Chain
from contracts.models import License

from . import queries


@dataclass(frozen=True, slots=True)
class Effects:
    """``question`` to confirm, ``lines`` saying what it does, ``button`` for the web page, and the
    license ids concerned by name (the CLI's ``--json`` keys)."""

    question: str
    lines: tuple[str, ...]
    button: str
    licenses: dict[str, list[int]]


async def _by_state(chain: Chain, dataset_id: int) -> dict[str, list[License]]:
    out: dict[str, list[License]] = {}
    for lic in await queries.licenses(chain, dataset_ids={dataset_id}):
        out.setdefault(await queries.license_state(chain, lic), []).append(lic)
    return out


def _ids(licenses: list[License]) -> list[int]:
    return [lic.license_id for lic in licenses]


async def revoke_effects(chain: Chain, dataset_id: int) -> Effects:
    """Revoking consent: revocable licenses end, irrevocable ones run on, waiting buyers may refund."""
    states = await _by_state(chain, dataset_id)
    valid = states.get("valid", [])
    ending, kept = _ids([x for x in valid if x.revocable]), _ids([x for x in valid if not x.revocable])
    waiting = _ids(states.get("waiting for key", []))
    return Effects(
        f"Revoke consent for dataset {dataset_id}?",
        (
            "This cannot be undone: no new licenses can be bought and no key is released from now on.",
            f"{len(ending)} revocable license(s) end now: {ending}.",
            f"{len(kept)} irrevocable license(s) stay valid until they expire: {kept}.",
            f"{len(waiting)} buyer(s) still waiting for a key can take their payment back at once: {waiting}.",
        ),
        "Revoke consent",
        {"licenses_ended": ending, "licenses_still_valid": kept, "licenses_refundable": waiting},
    )


async def end_effects(chain: Chain, dataset_id: int) -> Effects:
    """Ending storage: every share deleted, valid licenses cut off, waiting ones get nothing."""
    states = await _by_state(chain, dataset_id)
    valid, waiting = _ids(states.get("valid", [])), _ids(states.get("waiting for key", []))
    return Effects(
        f"End the storage of dataset {dataset_id}?",
        (
            "Every share is deleted from its node: this cannot be undone.",
            f"The {len(valid)} valid license(s) {valid} can no longer fetch it; no new license can be sold.",
            f"The {len(waiting)} license(s) waiting for a key {waiting} get nothing to fetch.",
        ),
        "End storage and delete the shares",
        {"licenses_cut_off": valid},
    )
