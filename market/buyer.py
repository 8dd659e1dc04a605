"""Buy a license, receive the key, fetch + verify + decode + decrypt the dataset.

    buy:   per-license BN254 key pair saved in the keystore -> purchase(dataset, purpose, public key,
           the offer seen: terms version, payment token, price limit) on-chain
    key:   wait for KeyDelivered -> open it with the saved secret -> check it against the on-chain
           key commitment; a wrong key is disputed on-chain at once (refund) and raises KeyMismatch
    fetch: manifest from any holder, checked against the on-chain manifest hash and key commitment
           -> block roots of each share checked against the committed share roots
           -> any k verified blocks per segment, fastest nodes first -> decode -> decrypt -> write

Nothing unverified reaches the output: a node serving wrong bytes only costs a retry elsewhere.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts import delivery
from contracts.chain import Chain
from contracts.models import License, LicenseStatus
from contracts.terms import Purpose
from erasure import envelope, localfs, manifest
from erasure.errors import ErasureError
from erasure.manifest import Manifest
from erasure.pipeline import Decoder
from storage_node.client import NodeClient
from storage_node.errors import NodeError

from . import errors
from .directory import Directory, DirectoryError
from .keystore import Keystore, KeystoreError


class BuyError(errors.MarketError):
    """A purchase or fetch could not be completed."""


class KeyNotDelivered(BuyError):
    """No key arrived (yet); ``refundable`` says whether the deadline passed."""

    def __init__(self, message: str, *, refundable: bool) -> None:
        super().__init__(message)
        self.refundable = refundable


class KeyMismatch(BuyError):
    """The delivered key does not match the dataset's on-chain key commitment. ``refunded`` says
    whether the dispute went through (else the dispute window had closed)."""

    def __init__(self, message: str, *, refunded: bool) -> None:
        super().__init__(message)
        self.refunded = refunded


class LicenseNotUsable(BuyError):
    """The license is refunded, expired or its consent was revoked."""


class ManifestUnavailable(BuyError):
    """No holder served a manifest matching the on-chain manifest hash."""


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
    and raises :class:`KeyMismatch`."""
    sealed = await chain.delivery(lic.license_id)
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
    """The data key of a license once the owner's agent delivered it, checked against the
    on-chain commitment (see :func:`receive_key`: a wrong key is disputed and refunded)."""
    deadline = time.monotonic() + within
    while True:
        lic = await chain.get_license(license_id)
        if lic.status == LicenseStatus.DELIVERED:
            return await receive_key(chain, keystore, lic)
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
            raise KeyNotDelivered(
                f"no key for license {license_id} yet (the owner's key agent may be offline); "
                f"delivery deadline in {lic.delivery_deadline - now} s",
                refundable=False,
            )
        await asyncio.sleep(poll)


class RemoteShareSource:
    """A share on a node, read from the decoder's worker threads through the event loop.

    Reads ahead: blocks are grouped in windows of ``readahead`` consecutive segments, aligned on
    segment numbers (window w covers segments ``[w * readahead, (w + 1) * readahead)``, bytes
    ``[w * readahead * block_size, min(that + readahead * block_size, share_size))``); the first
    request for a block fetches its whole window in one HTTP range request, kept until the decoder
    has moved past it. The alignment comes from the layout, never from the size of the block asked
    for: the last segment's block is shorter than the others. Without ``share_size`` and
    ``block_size`` every block is its own range request. Nothing is trusted here: the decoder
    checks every block against its committed root.
    """

    def __init__(
        self,
        client: NodeClient,
        url: str,
        dataset: str,
        index: int,
        loop: asyncio.AbstractEventLoop,
        *,
        share_size: int = 0,
        block_size: int = 0,
        readahead: int = 8,
    ) -> None:
        self.client = client
        self.url = url
        self.dataset = dataset
        self.index = index
        self.share_size = share_size
        self.block_size = block_size
        self.readahead = readahead
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: dict[int, Future[bytes]] = {}  # window number -> its bytes

    @classmethod
    def for_manifest(
        cls,
        client: NodeClient,
        url: str,
        man: Manifest,
        index: int,
        loop: asyncio.AbstractEventLoop,
        *,
        readahead: int = 8,
    ) -> RemoteShareSource:
        """Share ``index`` of the dataset ``man`` describes, reading ahead along its layout."""
        return cls(
            client,
            url,
            man.hash().hex(),
            index,
            loop,
            share_size=man.share_size,
            block_size=man.block_size,
            readahead=readahead,
        )

    def _run(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return self._result(fut)

    def _result(self, fut: Future[Any]) -> Any:
        try:
            return fut.result()
        except NodeError as err:  # the decoder treats OSError as "this share is unavailable"
            raise OSError(f"{self.url}: {err}") from err

    def block_roots(self) -> Sequence[bytes]:
        roots: list[bytes] = self._run(self.client.roots(self.url, self.dataset, self.index))
        return roots

    def _direct(self, offset: int, size: int) -> bytes:
        data: bytes = self._run(
            self.client.get_share(self.url, self.dataset, self.index, start=offset, end=offset + size)
        )
        return data

    def read_block(self, segment: int, offset: int, size: int) -> bytes:
        if self.readahead <= 1 or not self.share_size or not self.block_size:
            return self._direct(offset, size)
        number = segment // self.readahead
        span = self.readahead * self.block_size
        start = number * span
        end = min(start + span, self.share_size)
        if not start <= offset <= offset + size <= end:  # not a block of this layout: no window for it
            return self._direct(offset, size)
        with self._lock:
            fut = self._pending.get(number)
            if fut is None:
                fut = asyncio.run_coroutine_threadsafe(
                    self.client.get_share(self.url, self.dataset, self.index, start=start, end=end), self._loop
                )
                self._pending[number] = fut
                for old in [w for w in self._pending if w < number - 1]:
                    del self._pending[old]  # the decoder has moved past these windows
        chunk: bytes = self._result(fut)
        return chunk[offset - start : offset - start + size]


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
        }


async def holders(chain: Chain, directory: Directory, dataset_id: int) -> dict[int, str]:
    """share index -> node URL, from the dataset's latest deal on-chain."""
    deals = await chain.deals_of(dataset_id=dataset_id)
    if not deals:
        raise BuyError(f"dataset {dataset_id} has no storage deal")
    deal = await chain.get_deal(deals[-1])
    out: dict[int, str] = {}
    for i in range(deal.n):
        share = await chain.get_share(deal.deal_id, i)
        if share.faulty:
            continue
        try:
            out[i] = await directory.url_of(share.provider)
        except DirectoryError:
            continue
    return out


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
) -> FetchReport:
    """Fetch, verify, decode and decrypt a licensed dataset into ``out`` (a file or a directory)."""
    start = time.perf_counter()
    lic = await usable_license(chain, license_id)
    dataset = await chain.get_dataset(lic.dataset_id)
    data_key = await receive_key(chain, keystore, lic)
    urls = await holders(chain, directory, lic.dataset_id)
    man = await fetch_manifest(client, urls, dataset.manifest_hash)
    if (man.key_commitment, man.salt) != (dataset.key_commitment, dataset.key_salt):
        raise BuyError(f"dataset {lic.dataset_id}: its manifest and its registration commit to different keys")

    async def rtt(index: int, url: str) -> tuple[float, int, str] | tuple[None, int, str]:
        t = time.perf_counter()
        try:
            await asyncio.wait_for(client.health(url), 5.0)
        except (NodeError, TimeoutError) as err:
            return None, index, str(err)
        return time.perf_counter() - t, index, url

    probes = await asyncio.gather(*(rtt(i, u) for i, u in urls.items()))
    report = FetchReport(license_id, lic.dataset_id, dataset.manifest_hash.hex(), 0, 0.0, holders=urls)
    live = sorted((p for p in probes if p[0] is not None), key=lambda p: p[0] or 0.0)
    report.unreachable = {i: msg for t, i, msg in probes if t is None}
    loop = asyncio.get_running_loop()
    # fastest first; holders that did not answer the probe come last (slow is not gone: the
    # decoder still tries them if the others are not enough)
    order = [i for _, i, _ in live] + sorted(report.unreachable)
    sources = {i: RemoteShareSource.for_manifest(client, urls[i], man, i, loop) for i in order}

    def run() -> int:
        decoder = Decoder(man, data_key, sources, threads=threads, progress=progress)
        written = 0

        def counted() -> Any:
            nonlocal written
            for chunk in decoder:
                written += len(chunk)
                yield chunk

        try:
            localfs.write_dataset(man.content, counted(), out)
        finally:
            report.excluded = dict(decoder.report.excluded)
            report.shares_used = sorted(decoder.report.blocks_used)
        return written

    try:
        report.bytes_written = await asyncio.to_thread(run)
    except ErasureError as err:
        raise BuyError(f"could not rebuild dataset {lic.dataset_id}: {err}") from err
    report.seconds = time.perf_counter() - start
    return report
