"""Publish a dataset: encrypt and encode it, place its shares, register it and open its storage deal.

By default the shares stream to their nodes while they are encoded (:mod:`market.streaming`: a
draft deal first, pending uploads, then the root committed and the shares activated). The staged
path, kept for format version 1 and ``PublishOptions(streaming=False)``:

    pipeline (thread) -> share files in a staging directory -> register dataset on-chain
    -> choose n nodes (market.placement: distinct operators and networks, within the maximum ask)
    -> open the storage deal naming them, at a fee each chosen node's ask accepts
    -> upload every share in parallel with a signed order -> leave the manifest with each node

The data key goes into the owner's keystore *before* anything goes on-chain, so a crash at any
later step cannot lose it. A node that fails its upload is replaced (``replaceProvider`` allows it
while the share is not yet accepted) by a spare and the share goes there instead. The staging
directory is removed once every share is placed; a failed publish leaves it for inspection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts import errors
from contracts.chain import Chain
from contracts.registry import Registration
from contracts.terms import TRAINING_ALLOWED, LicenseTerms
from erasure import envelope, localfs, merkle
from erasure.manifest import Manifest
from erasure.pipeline import Layout, encode
from storage_node.client import NodeClient
from storage_node.errors import NodeError
from storage_node.orders import StorageOrder

from .directory import Directory, NodeInfo
from .errors import MarketError
from .keystore import Keystore
from .placement import NotEnoughNodes, PlacementPolicy, PublishError, choose_nodes, fee_for

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = ["NotEnoughNodes", "PlacementPolicy", "PublishError", "PublishOptions", "Published", "publish"]

log = logging.getLogger("datasov.publish")

DEFAULT_LAYOUT = Layout(k=4, n=10)
Progress = Callable[[str, int, int], None]
"""``progress(stage, advance, total)``: stage is "encode" or "upload"; sizes in bytes."""


@dataclass(frozen=True, slots=True)
class PublishOptions:
    layout: Layout = DEFAULT_LAYOUT
    price: int = 0
    terms: LicenseTerms = TRAINING_ALLOWED
    epochs: int = 100
    fee_per_share_epoch: int = 0
    key_agent: str | None = None
    upload_parallelism: int = 8
    placement: PlacementPolicy = PlacementPolicy()  # max ask (--max-fee), distinct networks, seed
    spares: int | None = None  # nodes kept in reserve for failed uploads (default: n)
    streaming: bool = True
    """Send shares while they are encoded (market.streaming; format version 2). False: encode into
    the staging directory first, register, open the deal, then upload (the older path)."""


@dataclass
class Published:
    dataset_id: int
    deal_id: int
    manifest: Manifest
    placements: dict[int, NodeInfo]
    replaced: list[tuple[int, str, str]] = field(default_factory=list)  # (share, failed node, reason)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def manifest_hash(self) -> bytes:
        return self.manifest.hash()


async def _file_body(path: Path, progress: Callable[[int], None], chunk: int = 1 << 20) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(path.open, "rb")
    try:
        while data := await asyncio.to_thread(f.read, chunk):
            progress(len(data))
            yield data
    finally:
        f.close()


async def publish(
    path: Path,
    *,
    chain: Chain,
    keystore: Keystore,
    directory: Directory,
    client: NodeClient,
    staging: Path,
    options: PublishOptions = PublishOptions(),
    progress: Progress | None = None,
    name: str | None = None,
) -> Published:
    """Publish the file or directory at ``path`` (``name`` goes into the manifest; default: its name).

    Streams by default (:mod:`market.streaming`: no staging copy, ``staging`` unused); format
    version 1 or ``options.streaming=False`` take the staged path below."""
    owner = keystore.account
    layout = options.layout
    report = progress or (lambda _s, _a, _t: None)
    if options.streaming and layout.version == 2:
        from .streaming import publish_streaming

        streamed = await publish_streaming(
            path,
            chain=chain,
            keystore=keystore,
            directory=directory,
            client=client,
            options=options,
            report=report,
            name=name,
        )
        return Published(*streamed)
    timings: dict[str, float] = {}

    # 1. encrypt + encode into the staging directory (off the event loop)
    t0 = time.perf_counter()
    source = localfs.open_dataset(path)
    name, size = name or source.name, source.size
    data_key = envelope.new_data_key()
    work = staging / f"publish-{int(time.time())}-{random.randrange(1 << 32):08x}"
    work.mkdir(parents=True)

    def run_encode() -> Manifest:
        with localfs.share_writers(work, layout.n) as sinks:
            result = encode(
                source.chunks,
                sinks,
                key=data_key,
                layout=layout,
                name=name,
                content=source.content,
                progress=lambda n: report("encode", n, size),
                index=source.index,
            )
        return result.manifest

    man = await asyncio.to_thread(run_encode)
    timings["encode"] = time.perf_counter() - t0
    keystore.add_dataset(man.hash(), data_key)  # before anything public happens

    # 2. choose the nodes (NotEnoughNodes before anything is uploaded or put on-chain), register,
    # open the deal at a fee every chosen node's ask accepts
    chosen, spares = await choose_nodes(
        directory,
        client,
        chain,
        layout.n,
        need_free=man.share_size,
        policy=options.placement,
        spares=layout.n if options.spares is None else options.spares,
    )
    fee = max([options.fee_per_share_epoch, *(fee_for(node.ask, man.share_size) for node in chosen)])
    spares = [node for node in spares if fee_for(node.ask, man.share_size) <= fee]
    dataset_id = await register_manifest(chain, owner, man, options, keystore, data_key)
    deal_id = await chain.open_deal(
        owner,
        dataset_id,
        [node.address for node in chosen],
        epochs=options.epochs,
        fee_per_share_epoch=options.fee_per_share_epoch,
    )
    published = Published(dataset_id, deal_id, man, {}, timings=timings)

    # 3. upload the shares in parallel; a failing node is replaced by a spare
    t1 = time.perf_counter()
    limit = asyncio.Semaphore(options.upload_parallelism)
    spare_lock = asyncio.Lock()
    total = man.share_size * man.n
    raw_manifest = man.canonical_bytes()

    async def place(index: int, node: NodeInfo) -> None:
        while True:
            try:
                async with limit:
                    await upload_share(client, owner, node, man, deal_id, index, work, report, total)
                    await client.put_manifest(node.url, man.hash().hex(), raw_manifest)
                published.placements[index] = node
                return
            except NodeError as err:
                log.warning("share %d: node %s failed: %s", index, node.url, err)
                async with spare_lock:
                    if not spares:
                        raise NotEnoughNodes(
                            f"share {index}: {node.url} failed ({err}) and no spare node is left"
                        ) from err
                    spare = spares.pop(0)
                    await chain.replace_provider(owner, deal_id, index, spare.address)
                published.replaced.append((index, node.url, str(err)))
                node = spare

    await asyncio.gather(*(place(i, node) for i, node in enumerate(chosen)))
    timings["upload"] = time.perf_counter() - t1
    shutil.rmtree(work, ignore_errors=True)
    return published


async def upload_share(
    client: NodeClient,
    owner: LocalAccount,
    node: NodeInfo,
    man: Manifest,
    deal_id: int,
    index: int,
    directory: Path,
    report: Progress,
    total: int,
) -> None:
    """Send share ``index`` from ``directory`` to ``node`` with a signed order proving its root."""
    order = StorageOrder.new(
        node=node.address,
        dataset=man.hash().hex(),
        index=index,
        share_root=man.share_roots[index],
        size=man.share_size,
        leaf_size=man.leaf_size,
        block_size=man.block_size,
        deal_id=deal_id,
        share_proof=share_proof(man.share_roots, index),
    )
    body = _file_body(localfs.share_path(directory, index), lambda n: report("upload", n, total))
    await client.put_share(node.url, order, owner, body)


def share_proof(share_roots: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """Siblings from share root ``index`` up to the commitment root."""
    return merkle.MerkleTree(b"".join(share_roots), merkle.HASH_SIZE).prove(index).siblings


async def end_storage(chain: Chain, owner: LocalAccount, directory: Directory, dataset_id: int) -> dict[str, Any]:
    """Terminate the dataset's open deals and order every holder to delete its share now.

    Termination owes nothing from the current epoch on, and each node checks on-chain that its
    share is no longer owed before it deletes (a delete order without termination is refused), so
    ending storage never gets an obedient node slashed.

    Nodes that cannot be reached delete the shares at their next garbage collection (the deal is
    over on-chain), so the result lists them as pending rather than failed."""
    dataset = await chain.get_dataset(dataset_id)
    if dataset.owner.lower() != owner.address.lower():
        raise PublishError(f"dataset {dataset_id} belongs to {dataset.owner}")
    deleted: list[int] = []
    pending: dict[int, str] = {}
    ended: list[int] = []
    async with NodeClient(retries=1, timeout=5.0) as client:
        for deal_id in await chain.deals_of(dataset_id=dataset_id):
            deal = await chain.get_deal(deal_id)
            if deal.settled:
                continue
            with contextlib.suppress(errors.StateError):  # already terminated: still delete the shares
                await chain.terminate_deal(owner, deal_id)
            ended.append(deal_id)
            for i in range(deal.n):
                share = await chain.get_share(deal_id, i)
                try:
                    url = await directory.url_of(share.provider)
                    await client.delete_share(url, dataset.manifest_hash.hex(), i, share.provider, owner)
                    deleted.append(i)
                except (NodeError, MarketError, errors.ContractsError) as err:
                    pending[i] = str(err)
    return {"dataset_id": dataset_id, "deals": ended, "deleted": deleted, "pending": pending}


def manifest_registration(man: Manifest, options: PublishOptions) -> Registration:
    """The on-chain registration of the dataset ``man`` describes, on offer as ``options`` say."""
    return Registration(
        manifest_hash=man.hash(),
        commitment_root=man.commitment_root,
        key_commitment=man.key_commitment,
        key_salt=man.salt,
        plaintext_size=man.plaintext_size,
        share_size=man.share_size,
        leaf_size=man.leaf_size,
        k=man.k,
        n=man.n,
        price=options.price,
        key_agent=options.key_agent,
    )


async def register_manifest(
    chain: Chain, owner: LocalAccount, man: Manifest, options: PublishOptions, keystore: Keystore, data_key: bytes
) -> int:
    """Register the dataset ``man`` describes on offer as ``options`` say, and keep its data key
    (the staged path; the streaming one registers and commits its deal at once); the new dataset id."""
    dataset_id = await chain.register(owner, manifest_registration(man, options), options.terms)
    keystore.add_dataset(man.hash(), data_key, dataset_id=dataset_id)
    return dataset_id
