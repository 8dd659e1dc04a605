"""The lab's side of key guardians: turn the pieces delivered for a license into its data key.

    for each KeyPieceDelivered of the counted epoch: open it with the license secret it was sealed to
    (the purchase key, or a later one after a piece dispute), check it against its commitment
    bad pieces (with the current secret) -> ``disputePieces`` at once: the contract checks them too,
    counts them against their guardians (``badPieces``) and bans them for the license; the license
    goes on under a fresh buyer key (saved in the keystore first) and the other guardians deliver
    t good pieces -> ``shamir.combine`` -> checked against the dataset's key commitment

A key that fails its commitment from t pieces that all pass theirs means the owner committed
inconsistent pieces: disputed the same way, and the contract refunds the lab.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from contracts import delivery, pieces, shamir
from contracts.chain import Chain
from contracts.guardians import PieceDelivery
from contracts.models import License
from erasure import envelope

from .buy_errors import BadPieces, KeyMismatch
from .keystore import Keystore, KeystoreError

log = logging.getLogger("datasov.lab")


@dataclass
class PieceOutcome:
    """What the pieces delivered so far give: the key (if t good ones combined) and who failed."""

    key: bytes | None = field(default=None, repr=False)
    good: list[int] = field(default_factory=list)  # piece indices that passed their commitment
    bad: dict[int, str] = field(default_factory=dict)  # piece index -> guardian, proven on-chain now
    disputed: bool = False  # a piece dispute was sent (the license continues under a new key)
    owner_fault: bool = False  # t good pieces that do not combine to the committed key: refunded


async def _secrets(chain: Chain, keystore: Keystore, lic: License) -> list[int]:
    """The secrets of every buyer key this license had (purchase key, then rotations), current last."""
    out = []
    for public in await chain.license_buyer_keys(lic.license_id):
        try:
            out.append(keystore.buyer_secret(public))
        except KeystoreError:
            continue
    if not out or delivery.key_hash(delivery.public_key(out[-1])) != lic.buyer_key_hash:
        raise KeystoreError(f"this keystore does not hold the current key of license {lic.license_id}")
    return out


async def check_pieces(chain: Chain, keystore: Keystore, lic: License, *, dispute: bool = True) -> PieceOutcome:
    """Open, check and (given t good ones) combine the pieces counted for ``lic``; dispute bad ones."""
    state = await chain.license_pieces(lic.license_id)
    out = PieceOutcome()
    if state.count == 0:
        return out
    gset = await chain.guardian_set(lic.dataset_id, state.epoch)
    if gset is None:
        return out
    ctx = await chain.delivery_context(lic.license_id)
    secrets = await _secrets(chain, keystore, lic)
    latest: dict[int, PieceDelivery] = {}
    for d in await chain.piece_deliveries(lic.license_id):
        if d.epoch == state.epoch and d.index in state.delivered:
            latest[d.index] = d  # a re-delivery after a dispute supersedes
    good: list[shamir.Piece] = []
    unrevealed: list[tuple[int, delivery.Sealed]] = []
    for index, d in sorted(latest.items()):
        if index not in state.revealed:
            unrevealed.append((index, d.sealed))
        piece = None
        for secret in reversed(secrets):
            try:
                raw = pieces.open_delivered(d.sealed, index, secret, ctx)
            except delivery.DeliveryError:
                continue
            piece = pieces.checked_piece(raw, index, lic.dataset_id, state.epoch, gset.commitments[index - 1])
            if piece is not None:
                break
        if piece is None:
            out.bad[index] = d.guardian
            log.warning("license %d: piece %d from guardian %s fails its commitment", lic.license_id, index, d.guardian)
        else:
            good.append(piece)
            out.good.append(index)
    if len(good) >= gset.threshold:
        key = shamir.combine(good[: gset.threshold])
        dataset = await chain.get_dataset(lic.dataset_id)
        if envelope.check_key_commitment(key, dataset.key_salt, dataset.key_commitment):
            out.key = key
            return out
        out.owner_fault = True
    if dispute and (out.bad or out.owner_fault):
        new_key = keystore.new_buyer_key(lic.dataset_id)  # saved before anything is sent
        await chain.dispute_pieces(keystore.account, lic.license_id, secrets[-1], unrevealed, new_key)
        keystore.note_license(lic.license_id, new_key)
        out.disputed = True
    return out


async def key_from_pieces(chain: Chain, keystore: Keystore, lic: License) -> bytes:
    out = await check_pieces(chain, keystore, lic)
    if out.key is not None:
        return out.key
    if out.owner_fault:
        raise KeyMismatch(
            f"the guardians' pieces for license {lic.license_id} match their commitments but combine to a key "
            "that misses the dataset's key commitment (the owner committed inconsistent pieces): disputed "
            f"on-chain, the payment was refunded ({lic.price} to {lic.buyer})",
            refunded=True,
        )
    named = ", ".join(f"piece {i} from guardian {g}" for i, g in sorted(out.bad.items()))
    raise BadPieces(
        f"license {lic.license_id}: {named} failed its commitment; proven on-chain (the guardian is counted "
        "and banned for this license), waiting for other guardians",
        guardians=out.bad,
    )
