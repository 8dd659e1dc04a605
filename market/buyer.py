"""Buy a license, receive the key, fetch + verify + decode + decrypt the dataset.

    buy:   per-license BN254 key pair saved in the keystore -> purchase(dataset, purpose, public key,
           the offer seen: terms version, payment token, price limit) on-chain
    key:   wait for KeyDelivered -> open it with the saved secret -> check it against the on-chain
           key commitment; a wrong key is disputed on-chain at once (refund) and raises KeyMismatch
    fetch: manifest from any holder, checked against the on-chain manifest hash and key commitment
           -> block roots of each share checked against the committed share roots
           -> any k verified blocks per segment, fastest nodes first -> decode -> decrypt -> write

Nothing unverified reaches the output: a node serving wrong bytes only costs a retry elsewhere.
A slow holder is not a missing one: a read that has not answered within its wait (``first_wait``
seconds, doubled after each timeout) is left running while the other holders are asked, and waited
for again later, until the fetch's ``deadline``. Holders whose share is marked faulty on-chain are
asked last rather than never (their blocks are verified like any other). When the fetch fails, its
error says which shares timed out, which holders refused, which were unreachable and which served
bytes that failed verification.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts import delivery
from contracts.chain import Chain
from contracts.models import License, LicenseStatus
from contracts.terms import Purpose
from erasure import envelope, localfs, manifest
from erasure.decoding import Decoder
from erasure.errors import ErasureError
from erasure.manifest import Manifest
from storage_node.client import NodeClient
from storage_node.errors import NodeError

from . import piece_buyer
from .buy_errors import BadPieces as BadPieces
from .buy_errors import BuyError as BuyError
from .buy_errors import KeyMismatch as KeyMismatch
from .buy_errors import KeyNotDelivered as KeyNotDelivered
from .buy_errors import LicenseNotUsable as LicenseNotUsable
from .buy_errors import ManifestUnavailable as ManifestUnavailable
from .directory import Directory, DirectoryError
from .keystore import Keystore, KeystoreError
from .piece_buyer import key_from_pieces
from .remote_source import RemoteShareSource


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


async def receive_key(chain: Chain, keystore: Keystore, lic: License) -> bytes:
    """The data key delivered for a license, checked against the dataset's on-chain key
    commitment. A wrong key (or garbage) is disputed on-chain at once, which refunds the buyer,
    and raises :class:`KeyMismatch`. A license delivered by t guardian pieces is opened piece by
    piece (:mod:`market.piece_buyer`): bad pieces are proven on-chain and raise :class:`BadPieces`."""
    sealed = await chain.delivery(lic.license_id)
    if sealed is None and (await chain.license_pieces(lic.license_id)).complete:
        return await key_from_pieces(chain, keystore, lic)
    if sealed is None:
        raise BuyError(f"license {lic.license_id} is delivered but no KeyDelivered event was found")
    try:
        public = keystore.license_key(lic.license_id)
    except KeystoreError:
        public = await chain.buyer_key(lic.license_id)
    secret = keystore.buyer_secret(public)
    dataset = await chain.get_dataset(lic.dataset_id)
    try:
        key = delivery.open_sealed(sealed, secret, await chain.delivery_context(lic.license_id))
        good = envelope.check_key_commitment(key, dataset.key_salt, dataset.key_commitment)
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


@dataclass
class FetchReport:
    license_id: int
    dataset_id: int
    manifest_hash: str
    bytes_written: int
    seconds: float
    holders: dict[int, str]
    unreachable: dict[int, str] = field(default_factory=dict)
    excluded: dict[int, str] = field(default_factory=dict)
    shares_used: list[int] = field(default_factory=list)
    faulty: list[int] = field(default_factory=list)  # marked faulty on-chain: asked last
    unlisted: dict[int, str] = field(default_factory=dict)  # no URL known for the holder
    timeouts: dict[int, int] = field(default_factory=dict)  # reads that did not answer in time

    def to_json(self) -> dict[str, Any]:
        return {
            "license_id": self.license_id,
            "dataset_id": self.dataset_id,
            "manifest_hash": self.manifest_hash,
            "bytes": self.bytes_written,
            "seconds": round(self.seconds, 3),
            "holders": self.holders,
            "unreachable": self.unreachable,
            "excluded": self.excluded,
            "shares_used": self.shares_used,
            "faulty": self.faulty,
            "unlisted": self.unlisted,
            "timeouts": self.timeouts,
        }


@dataclass(frozen=True)
class Holders:
    """Where a dataset's shares are, from its latest deal on-chain."""

    urls: dict[int, str]  # share index -> node URL (faulty ones included)
    faulty: frozenset[int]  # shares marked faulty on-chain (a missed proof): asked last
    unlisted: dict[int, str]  # shares whose provider the directory does not know -> why


async def holders(chain: Chain, directory: Directory, dataset_id: int) -> Holders:
    """Every share's holder from the dataset's latest deal on-chain, faulty ones marked."""
    deals = await chain.deals_of(dataset_id=dataset_id)
    if not deals:
        raise BuyError(f"dataset {dataset_id} has no storage deal")
    deal = await chain.get_deal(deals[-1])
    urls: dict[int, str] = {}
    faulty: set[int] = set()
    unlisted: dict[int, str] = {}
    for i in range(deal.n):
        share = await chain.get_share(deal.deal_id, i)
        if share.faulty:
            faulty.add(i)
        try:
            urls[i] = await directory.url_of(share.provider)
        except DirectoryError as err:
            unlisted[i] = str(err)
    return Holders(urls, frozenset(faulty), unlisted)


async def fetch_manifest(client: NodeClient, urls: dict[int, str], dataset_hash: bytes) -> Manifest:
    problems: list[str] = []
    for url in urls.values():
        try:
            raw = await client.get_manifest(url, dataset_hash.hex())
            man = manifest.parse(raw)
        except (NodeError, ErasureError) as err:
            problems.append(f"{url}: {err}")
            continue
        if man.hash() == dataset_hash:
            return man
        problems.append(f"{url}: served a manifest with another hash")
    shown = "; ".join(problems[:3]) or "no holders known"
    raise ManifestUnavailable(f"no holder served the manifest {dataset_hash.hex()} ({shown})")


async def usable_license(chain: Chain, license_id: int) -> License:
    lic = await chain.get_license(license_id)
    if lic.status != LicenseStatus.DELIVERED:
        raise LicenseNotUsable(f"license {license_id} is {lic.status.name.lower()}, not delivered")
    if not await chain.is_license_valid(license_id):
        raise LicenseNotUsable(f"license {license_id} is no longer valid (expired, or consent revoked)")
    return lic


FIRST_WAIT = 2.0
"""Seconds a block read may take before the decoder also asks other holders (doubles per timeout)."""
DEADLINE = 600.0
"""Seconds a fetch keeps asking slow holders before it gives up."""


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
) -> FetchReport:
    """Fetch, verify, decode and decrypt a licensed dataset into ``out`` (a file or a directory).

    Holders are asked fastest first, those that missed the health probe next, those marked faulty
    on-chain last. A read that has not answered in ``first_wait`` seconds (then twice that, and so
    on) is left running while other holders are asked; reads still unanswered ``deadline`` seconds
    after the start give up. Raises :class:`BuyError` naming the shares that timed out, refused,
    were unreachable or failed verification if fewer than k verified blocks came in for a segment.
    """
    lic = await usable_license(chain, license_id)
    data_key = await receive_key(chain, keystore, lic)
    return await fetch_dataset(
        chain,
        directory,
        client,
        lic.dataset_id,
        data_key,
        out,
        license_id=license_id,
        keystore=keystore,
        threads=threads,
        progress=progress,
        first_wait=first_wait,
        deadline=deadline,
    )


async def fetch_dataset(
    chain: Chain,
    directory: Directory,
    client: NodeClient,
    dataset_id: int,
    data_key: bytes,
    out: Path,
    *,
    license_id: int = 0,
    keystore: Keystore | None = None,
    threads: int = 8,
    progress: Callable[[int], None] | None = None,
    first_wait: float = FIRST_WAIT,
    deadline: float = DEADLINE,
) -> FetchReport:
    """:func:`fetch` once the license is checked and its data key received (checked against the
    commitment): also what a pool license fetches, one contribution at a time (:mod:`market.pools`).
    With the license's ``keystore``, a seekable (format v2) dataset is fetched through the reader."""
    start = time.perf_counter()
    give_up = time.monotonic() + deadline
    dataset = await chain.get_dataset(dataset_id)
    found = await holders(chain, directory, dataset_id)
    urls = found.urls
    healthy_first = sorted(urls, key=lambda i: (i in found.faulty, i))
    man = await fetch_manifest(client, {i: urls[i] for i in healthy_first}, dataset.manifest_hash)
    if (man.key_commitment, man.salt) != (dataset.key_commitment, dataset.key_salt):
        raise BuyError(f"dataset {dataset_id}: its manifest and its registration commit to different keys")
    if man.seekable and keystore is not None and license_id:  # format v2: a reader client (market.reader_fetch)
        from .reader_fetch import fetch_to

        return await fetch_to(
            chain,
            keystore,
            directory,
            client,
            license_id,
            out,
            threads=threads,
            progress=progress,
            first_wait=first_wait,
            deadline=deadline,
        )

    async def rtt(index: int, url: str) -> tuple[float, int, str] | tuple[None, int, str]:
        t = time.perf_counter()
        try:
            await asyncio.wait_for(client.health(url), 5.0)
        except (NodeError, TimeoutError) as err:
            return None, index, str(err) or "no answer to the health probe in 5 s"
        return time.perf_counter() - t, index, url

    probes = await asyncio.gather(*(rtt(i, u) for i, u in urls.items()))
    report = FetchReport(license_id, dataset_id, dataset.manifest_hash.hex(), 0, 0.0, holders=urls)
    report.faulty, report.unlisted = sorted(found.faulty), dict(found.unlisted)
    live = sorted((p for p in probes if p[0] is not None), key=lambda p: p[0] or 0.0)
    report.unreachable = {i: msg for t, i, msg in probes if t is None}
    loop = asyncio.get_running_loop()
    # fastest first; holders that did not answer the probe next (slow is not gone: the decoder
    # still tries them if the others are not enough); shares marked faulty last, not never
    order = [i for _, i, _ in live] + sorted(report.unreachable)
    order = sorted(order, key=lambda i: i in found.faulty)  # stable: keeps the speed order
    sources = {
        i: RemoteShareSource.for_manifest(client, urls[i], man, i, loop, first_wait=first_wait, deadline=give_up)
        for i in order
    }
    for source in sources.values():
        source.start()  # every holder's block roots asked for at once

    def run() -> int:
        decoder = Decoder(man, data_key, sources, threads=threads, progress=progress)
        written = 0

        def counted() -> Any:
            nonlocal written
            for chunk in decoder:
                written += len(chunk)
                yield chunk

        try:
            localfs.write_dataset(man.content, counted(), out, index=man.index)
        except ErasureError as err:
            raise BuyError(
                f"could not rebuild dataset {dataset_id}: {err}; {_problems(report, sources, decoder)}"
            ) from err
        finally:
            report.excluded = dict(decoder.report.excluded)
            report.shares_used = sorted(decoder.report.blocks_used)
            report.timeouts = dict(decoder.report.timeouts)
        return written

    try:
        report.bytes_written = await asyncio.to_thread(run)
    except ErasureError as err:  # the manifest does not fit the decoder (rebuild errors are BuyErrors)
        raise BuyError(f"could not rebuild dataset {dataset_id}: {err}") from err
    finally:
        for source in sources.values():
            source.close()
    report.seconds = time.perf_counter() - start
    return report


def _problems(report: FetchReport, sources: dict[int, RemoteShareSource], decoder: Decoder) -> str:
    """Which shares could not help, by cause: the part of a failed fetch's error a user acts on."""
    causes: dict[str, list[int]] = {"timed out": [], "refused": [], "unreachable": []}
    for i, source in sources.items():
        if source.failure is not None:
            causes[source.failure[0]].append(i)
    failed = set(decoder.report.bad_blocks) | {
        i for i, why in decoder.report.excluded.items() if why.startswith("block roots rejected") and i in sources
    }
    causes["failed verification"] = sorted(failed - {i for ids in causes.values() for i in ids})
    slow = sorted(set(decoder.report.timeouts) - {i for ids in causes.values() for i in ids})
    if slow:
        causes["slow (answered late or not at all)"] = slow
    causes["no holder known"] = sorted(report.unlisted)
    causes["marked faulty on-chain"] = report.faulty
    return "; ".join(f"{name}: {ids}" for name, ids in causes.items() if ids) or "no share failed"
