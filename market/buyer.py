"""Buy a license, receive the key, fetch the dataset.

    buy:   per-license BN254 key pair saved in the keystore -> purchase(dataset, purpose, public key,
           the offer seen: terms version, payment token, price limit) on-chain
    key:   wait for KeyDelivered -> open it with the saved secret -> check it against the on-chain
           key commitment; a wrong key is disputed on-chain at once (refund) and raises KeyMismatch
    fetch: the license checked once, its key received -> :func:`market.dataset_fetch.fetch_dataset`
           (holders and their ranking: :mod:`market.holders`)

The names of the split-off modules (``holders``, ``fetch_manifest``, ``Holders``, ``FetchReport``,
``fetch_dataset``, ``FIRST_WAIT``, ``DEADLINE``) are re-exported here, as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from contracts import delivery
from contracts.chain import Chain
from contracts.models import Dataset, License, LicenseStatus
from contracts.terms import Purpose
from erasure import envelope
from erasure.errors import ErasureError
from storage_node.client import NodeClient

from . import piece_buyer
from .buy_errors import BadPieces as BadPieces
from .buy_errors import BuyError as BuyError
from .buy_errors import ConsentEnded as ConsentEnded
from .buy_errors import KeyMismatch as KeyMismatch
from .buy_errors import KeyNotDelivered as KeyNotDelivered
from .buy_errors import LicenseExpired as LicenseExpired
from .buy_errors import LicenseNotUsable as LicenseNotUsable
from .buy_errors import LicenseRefunded as LicenseRefunded
from .buy_errors import ManifestUnavailable as ManifestUnavailable
from .dataset_fetch import DEADLINE as DEADLINE
from .dataset_fetch import FIRST_WAIT as FIRST_WAIT
from .dataset_fetch import FetchReport as FetchReport
from .dataset_fetch import fetch_dataset as fetch_dataset
from .directory import Directory
from .fetch_phases import mark
from .holders import Holders as Holders
from .holders import fetch_manifest as fetch_manifest
from .holders import holders as holders
from .holders import located
from .keystore import Keystore, KeystoreError
from .piece_buyer import key_from_pieces


async def buy(
    chain: Chain,
    keystore: Keystore,
    dataset_id: int,
    purpose: Purpose,
    *,
    max_price: int | None = None,
    terms_version: int | None = None,
    payment_token: str | None = None,
) -> int:
    """Purchase a license for ``purpose``; returns the license id (the key comes later).

    The purchase names the offer agreed to: ``terms_version`` and ``payment_token`` (by default
    the offer as read now, i.e. as shown to the user) and ``max_price``; an offer changed before
    the purchase is mined makes it revert (``TermsVersionMismatch``, ``PaymentTokenMismatch``)."""
    buyer_key = keystore.new_buyer_key(dataset_id)
    license_id = await chain.purchase(
        keystore.account,
        dataset_id,
        purpose,
        buyer_key,
        max_price=max_price,
        terms_version=terms_version,
        payment_token=payment_token,
    )
    keystore.note_license(license_id, buyer_key)
    return license_id


async def receive_key(chain: Chain, keystore: Keystore, lic: License, dataset: Dataset | None = None) -> bytes:
    """The data key delivered for a license, checked against the dataset's on-chain key
    commitment. A wrong key (or garbage) is disputed on-chain at once, which refunds the buyer,
    and raises :class:`KeyMismatch`. A license delivered by t guardian pieces is opened piece by
    piece (:mod:`market.piece_buyer`): bad pieces are proven on-chain and raise :class:`BadPieces`.
    ``dataset``: the license's dataset record, if the caller read it already."""
    if dataset is None:
        sealed, record = await asyncio.gather(chain.delivery(lic.license_id, lic), chain.get_dataset(lic.dataset_id))
    else:
        sealed, record = await chain.delivery(lic.license_id, lic), dataset
    if sealed is None and (await chain.license_pieces(lic.license_id)).complete:
        return await key_from_pieces(chain, keystore, lic)
    if sealed is None:
        raise BuyError(f"license {lic.license_id} is delivered but no KeyDelivered event was found")
    try:
        public = keystore.license_key(lic.license_id)
    except KeystoreError:
        public = await chain.buyer_key(lic.license_id)
    secret = keystore.buyer_secret(public)
    context = await chain.delivery_context(lic.license_id)
    try:  # BN254 in pure Python (~0.2-0.5 s): on a thread, so that the fetch's chain and node reads go on meanwhile
        key = await asyncio.to_thread(delivery.open_sealed, sealed, secret, context)
        good = envelope.check_key_commitment(key, record.key_salt, record.key_commitment)
    except (delivery.DeliveryError, ErasureError):
        good = False
    if good:
        return key
    if lic.paid or await chain.timestamp() > lic.delivered_at + chain.deployment.dispute_window:
        raise KeyMismatch(
            f"the key delivered for license {lic.license_id} does not match the dataset's commitment, "
            "and its dispute window has closed",
            refunded=False,
        )
    await chain.dispute(keystore.account, lic.license_id, secret, sealed)
    raise KeyMismatch(
        f"the key delivered for license {lic.license_id} does not match the dataset's commitment: "
        f"disputed on-chain, the payment was refunded ({lic.price} to {lic.buyer})",
        refunded=True,
    )


async def wait_for_key(
    chain: Chain, keystore: Keystore, license_id: int, *, within: float = 60.0, poll: float = 0.25
) -> bytes:
    """The data key of a license once the owner's agent delivered it or t guardians delivered
    their pieces, checked against the on-chain commitments (see :func:`receive_key`: a wrong key is
    disputed and refunded; a bad piece is proven on-chain and its guardian named, and the wait goes
    on for the other guardians' pieces)."""
    deadline = time.monotonic() + within
    bad: dict[int, str] = {}
    seen_pieces = 0
    while True:
        lic = await chain.get_license(license_id)
        if lic.status == LicenseStatus.DELIVERED:
            try:
                return await receive_key(chain, keystore, lic)
            except BadPieces as err:
                bad.update(err.guardians)
                seen_pieces = 0
                continue
        if lic.status == LicenseStatus.PENDING and await chain.guardian_epoch(lic.dataset_id):
            count = (await chain.license_pieces(license_id)).count
            if count > seen_pieces:  # check pieces as they come: a bad one is proven at once
                out = await piece_buyer.check_pieces(chain, keystore, lic)
                bad.update(out.bad)
                seen_pieces = 0 if out.disputed else count
        if lic.status == LicenseStatus.REFUNDED:
            raise LicenseNotUsable(f"license {license_id} was refunded")
        if lic.status == LicenseStatus.REJECTED:
            raise LicenseNotUsable(f"license {license_id} was refunded after a disputed (wrong) key delivery")
        now = await chain.timestamp()
        if now > lic.delivery_deadline:
            raise KeyNotDelivered(
                f"the key for license {license_id} was not delivered before the deadline",
                refundable=True,
            )
        if time.monotonic() >= deadline:
            named = "".join(f"; piece {i} from guardian {g} was bad (proven on-chain)" for i, g in sorted(bad.items()))
            if bad:
                raise BadPieces(
                    f"no key for license {license_id} yet{named}; delivery deadline in {lic.delivery_deadline - now} s",
                    guardians=bad,
                )
            raise KeyNotDelivered(
                f"no key for license {license_id} yet (the owner's key agent and its guardians may be offline); "
                f"delivery deadline in {lic.delivery_deadline - now} s",
                refundable=False,
            )
        await asyncio.sleep(poll)


async def check_license(chain: Chain, license_id: int) -> License:
    """The license if it may be used now; else exactly why not.

    Raises :class:`~market.KeyNotDelivered` (pending), :class:`LicenseRefunded`,
    :class:`LicenseExpired`, :class:`ConsentEnded`, or :class:`~market.LicenseNotUsable`
    if the contract says no for a reason this code does not know."""
    lic, now, valid = await asyncio.gather(  # one round trip, not three
        chain.get_license(license_id), chain.timestamp(), chain.is_license_valid(license_id)
    )
    if lic.status == LicenseStatus.PENDING:
        raise KeyNotDelivered(
            f"the key for license {license_id} has not been delivered yet", refundable=now > lic.delivery_deadline
        )
    if lic.status in (LicenseStatus.REFUNDED, LicenseStatus.REJECTED):
        why = "after a disputed (wrong) key delivery" if lic.status == LicenseStatus.REJECTED else ""
        raise LicenseRefunded(f"license {license_id} was refunded {why}".strip())
    if lic.expires_at and now >= lic.expires_at:
        raise LicenseExpired(f"license {license_id} expired at chain time {lic.expires_at} (now {now})")
    if lic.revocable and (revoked := await chain.consent_revoked_at(lic.dataset_id)):
        raise ConsentEnded(
            f"license {license_id}: the owner revoked consent for dataset {lic.dataset_id} at chain time "
            f"{revoked}, and the license's terms are revocable"
        )
    if not valid:
        raise LicenseNotUsable(f"license {license_id} is not valid on-chain")
    return lic


async def usable_license(chain: Chain, license_id: int) -> License:
    """The license if it is delivered and valid on-chain, else :class:`LicenseNotUsable` (a
    pending one too: :func:`check_license` says which state it is in, for readers)."""
    lic, valid = await asyncio.gather(chain.get_license(license_id), chain.is_license_valid(license_id))
    if lic.status != LicenseStatus.DELIVERED:
        raise LicenseNotUsable(f"license {license_id} is {lic.status.name.lower()}, not delivered")
    if not valid:
        raise LicenseNotUsable(f"license {license_id} is no longer valid (expired, or consent revoked)")
    return lic


async def licensed_key(chain: Chain, keystore: Keystore, license_id: int) -> tuple[License, bytes]:
    """The license if it may be used now (:func:`check_license`) and its data key, received and
    checked against the on-chain key commitment (:func:`receive_key`): what every read starts with."""
    lic = await check_license(chain, license_id)
    return lic, await receive_key(chain, keystore, lic)


async def fetch(
    chain: Chain,
    keystore: Keystore,
    directory: Directory,
    client: NodeClient,
    license_id: int,
    out: Path,
    *,
    threads: int = 8,
    progress: Callable[[int], None] | None = None,
    first_wait: float = FIRST_WAIT,
    deadline: float = DEADLINE,
    checked: tuple[License | None, Dataset] | None = None,
) -> FetchReport:
    """Fetch, verify, decode and decrypt a licensed dataset into ``out`` (a file or a directory).

    ``checked``: what the caller read already, not read again: the license as :func:`usable_license`
    returned it (None: read and checked here) and its dataset's on-chain record.

    Holders are asked fastest first, those that missed the health probe next, those marked faulty
    on-chain last. A read that has not answered in ``first_wait`` seconds (then twice that, and so
    on) is left running while other holders are asked; reads still unanswered ``deadline`` seconds
    after the start give up. Raises :class:`BuyError` naming the shares that timed out, refused,
    were unreachable or failed verification if fewer than k verified blocks came in for a segment.
    """
    lic, dataset = checked if checked is not None else (None, None)
    if lic is None or lic.license_id != license_id:
        lic = await usable_license(chain, license_id)
    if dataset is not None and dataset.dataset_id != lic.dataset_id:
        dataset = None
    key = asyncio.ensure_future(receive_key(chain, keystore, lic, dataset))  # the key and where the shares are: at once
    where = asyncio.ensure_future(located(chain, directory, client, lic.dataset_id, dataset))
    try:
        data_key = await key
        await where
    finally:  # the first failure is raised as it is; the other read is cancelled and awaited
        for task in (key, where):
            task.cancel()
        await asyncio.gather(key, where, return_exceptions=True)
    mark("license checked; key received, holders and manifest found (at once)")
    return await fetch_dataset(
        chain,
        directory,
        client,
        lic.dataset_id,
        data_key,
        out,
        license_id=license_id,
        threads=threads,
        progress=progress,
        first_wait=first_wait,
        deadline=deadline,
        located=where.result(),
    )
