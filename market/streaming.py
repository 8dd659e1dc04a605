"""Streaming publish: shares go to their nodes while they are encoded; no staging copy on disk.

    draft deal on-chain (sizes, providers, escrow; no root yet)
    -> encode (thread) ==bounded queue per share==> n parallel uploads, held pending by the nodes
    -> data key into the keystore -> register the dataset and commit the deal to it, one transaction
    -> activate every pending share (checked against the committed root), the manifest in the same request

Reading, encryption, coding and hashing run in the pipeline's threads; sending runs on the event
loop. Each share's queue holds at most ``QUEUE_BLOCKS`` blocks, and the encoder waits when one is
full, so memory stays flat whatever the size: the slowest node sets the pace.

A node that fails (upload or activation) is replaced by a spare (``replaceProvider``, allowed while
the share is not accepted); the share is then rebuilt by encoding again with the same key, salt and
stream header (byte-identical, checked against its committed root) and sent with an ordinary order.
Why nodes can hold bytes before the root exists and still never store unpaid ones:
docs/streaming-publish.md.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.chain import Chain
from erasure import envelope, localfs
from erasure.manifest import Manifest
from erasure.pipeline import Layout, encode, planned_share_size
from storage_node.client import NodeClient
from storage_node.errors import NodeError
from storage_node.orders import PendingOrder, StorageOrder

from .directory import Directory, NodeInfo
from .keystore import Keystore
from .placement import NotEnoughNodes, PublishError, choose_nodes, fee_for

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from .publisher import PublishOptions

log = logging.getLogger("datasov.publish")

QUEUE_BLOCKS = 8
"""Blocks buffered per share between the encoder and its upload."""

Report = Callable[[str, int, int], None]


class QueueSink:
    """A :class:`erasure.pipeline.ShareSink` written by the encoder thread, read by one upload.

    ``write`` waits while ``capacity`` blocks are queued; once the reader has failed, writes are
    dropped (that share is rebuilt later), so a dead node never stalls the other shares."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int = QUEUE_BLOCKS) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._room = threading.Semaphore(capacity)
        self._capacity = capacity
        self.failed = False

    def write(self, data: bytes, /) -> None:
        if self.failed:  # checked before waiting: fail() wakes a writer already waiting
            return
        self._room.acquire()
        if not self.failed:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, bytes(data))

    def close(self) -> None:
        """The encoder is done (or gave up): the reader ends after what is queued."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    def fail(self) -> None:
        """Called by the reader when its upload failed: release the writer for good."""
        if not self.failed:
            self.failed = True
            for _ in range(self._capacity + 1):
                self._room.release()

    async def body(self, progress: Callable[[int], None]) -> AsyncIterator[bytes]:
        while (data := await self._queue.get()) is not None:
            self._room.release()
            progress(len(data))
            yield data


class NullSink:
    def write(self, data: bytes, /) -> None:
        pass


async def publish_streaming(
    path: Path,
    *,
    chain: Chain,
    keystore: Keystore,
    directory: Directory,
    client: NodeClient,
    options: PublishOptions,
    report: Report,
    name: str | None,
) -> tuple[int, int, Manifest, dict[int, NodeInfo], list[tuple[int, str, str]], dict[str, float]]:
    """The streaming publish (see the module docstring); returns what :class:`Published` holds."""
    owner = keystore.account
    layout = options.layout
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    source = localfs.open_dataset(path)
    name, size = name or source.name, source.size
    share_size = planned_share_size(size, layout)
    data_key, salt = envelope.new_data_key(), envelope.new_salt()

    chosen, spares = await choose_nodes(
        directory,
        client,
        chain,
        layout.n,
        need_free=share_size,
        policy=options.placement,
        spares=layout.n if options.spares is None else options.spares,
    )
    fee = max([options.fee_per_share_epoch, *(fee_for(node.ask, share_size) for node in chosen)])
    spares = [node for node in spares if fee_for(node.ask, share_size) <= fee]
    timings["placement"] = time.perf_counter() - t0
    deal_id = await chain.open_draft_deal(
        owner,
        share_size=share_size,
        leaf_size=layout.leaf_size,
        k=layout.k,
        providers=[node.address for node in chosen],
        epochs=options.epochs,
        fee_per_share_epoch=fee,
    )
    timings["draft_deal"] = time.perf_counter() - t0 - timings["placement"]

    # encode into n bounded queues while n uploads drain them
    t1 = time.perf_counter()
    loop = asyncio.get_running_loop()
    sinks = [QueueSink(loop) for _ in range(layout.n)]
    total = share_size * layout.n
    failed: dict[int, str] = {}

    async def send(index: int, node: NodeInfo) -> None:
        order = PendingOrder.new(
            node=node.address,
            deal_id=deal_id,
            index=index,
            size=share_size,
            leaf_size=layout.leaf_size,
            block_size=layout.block_size,
        )
        try:
            await client.put_pending(node.url, order, owner, sinks[index].body(lambda n: report("upload", n, total)))
        except NodeError as err:
            log.warning("share %d: pending upload to %s failed: %s", index, node.url, err)
            failed[index] = str(err)
        finally:
            sinks[index].fail()  # whatever happened, the encoder never waits for this share again

    def run_encode() -> Manifest:
        try:
            return encode(
                source.chunks,
                sinks,
                key=data_key,
                salt=salt,
                layout=layout,
                name=name,
                content=source.content,
                progress=lambda n: report("encode", n, size),
                index=source.index,
            ).manifest
        finally:
            for sink in sinks:
                sink.close()

    uploads = [asyncio.ensure_future(send(i, node)) for i, node in enumerate(chosen)]
    saving: asyncio.Future[None] | None = None
    try:
        man = await asyncio.to_thread(run_encode)
        if man.share_size == share_size:  # the key is kept (fsync) while the uploads end, before anything public
            saving = asyncio.ensure_future(asyncio.to_thread(keystore.add_dataset, man.hash(), data_key))
    finally:
        await asyncio.gather(*uploads, return_exceptions=True)
    if saving is None:
        raise PublishError(f"{path} changed while it was read ({man.plaintext_size} bytes, not {size})")
    await saving
    timings["stream"] = time.perf_counter() - t1

    # register and commit the deal in one transaction (the root goes on-chain), activate the pending shares
    t2 = time.perf_counter()
    from .publisher import manifest_registration

    registration = manifest_registration(man, options)
    dataset_id = await chain.register_and_commit(owner, deal_id, registration, options.terms)
    noting = asyncio.ensure_future(  # the dataset id noted beside the key while the shares are activated
        asyncio.to_thread(keystore.add_dataset, man.hash(), data_key, dataset_id=dataset_id)
    )
    timings["chain"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    placements: dict[int, NodeInfo] = {}
    raw_manifest = man.canonical_bytes()

    async def activate(index: int, node: NodeInfo) -> None:
        if index in failed:
            return
        try:
            await client.activate(node.url, storage_order(man, deal_id, index, node), owner, manifest=raw_manifest)
            placements[index] = node
        except NodeError as err:
            log.warning("share %d: activation at %s failed: %s", index, node.url, err)
            failed[index] = str(err)

    try:
        await asyncio.gather(*(activate(i, node) for i, node in enumerate(chosen)))
    finally:
        await noting
    replaced: list[tuple[int, str, str]] = []
    for index in sorted(failed):
        node = await _rebuild_on_spare(
            index, chosen[index], failed[index], spares, chain, client, owner, man, deal_id, path, data_key, replaced
        )
        placements[index] = node
    timings["activate"] = time.perf_counter() - t3
    timings["encode"] = timings["upload"] = timings["stream"]
    return dataset_id, deal_id, man, placements, replaced, timings


def storage_order(man: Manifest, deal_id: int, index: int, node: NodeInfo) -> StorageOrder:
    from .publisher import share_proof

    return StorageOrder.new(
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


async def _rebuild_on_spare(
    index: int,
    node: NodeInfo,
    reason: str,
    spares: list[NodeInfo],
    chain: Chain,
    client: NodeClient,
    owner: LocalAccount,
    man: Manifest,
    deal_id: int,
    path: Path,
    data_key: bytes,
    replaced: list[tuple[int, str, str]],
) -> NodeInfo:
    """Move share ``index`` to a spare and send it there, encoding it again (byte-identical)."""
    while True:
        if not spares:
            raise NotEnoughNodes(f"share {index}: {node.url} failed ({reason}) and no spare node is left")
        spare = spares.pop(0)
        await chain.replace_provider(owner, deal_id, index, spare.address)
        replaced.append((index, node.url, reason))
        try:
            await _send_rebuilt(index, spare, client, owner, man, deal_id, path, data_key)
            await client.put_manifest(spare.url, man.hash().hex(), man.canonical_bytes())
            return spare
        except NodeError as err:
            log.warning("share %d: node %s failed: %s", index, spare.url, err)
            node, reason = spare, str(err)


async def _send_rebuilt(
    index: int,
    node: NodeInfo,
    client: NodeClient,
    owner: LocalAccount,
    man: Manifest,
    deal_id: int,
    path: Path,
    data_key: bytes,
) -> None:
    loop = asyncio.get_running_loop()
    sink = QueueSink(loop)
    sinks: Sequence[QueueSink | NullSink] = [sink if i == index else NullSink() for i in range(man.n)]
    layout = Layout(
        codec=man.codec,
        k=man.k,
        n=man.n,
        block_size=man.block_size,
        leaf_size=man.leaf_size,
        message_size=man.encryption.message_size,
        version=man.version,
        scheme=man.encryption.scheme,
    )

    def run() -> bytes:
        try:
            source = localfs.open_dataset(path)
            rebuilt = encode(
                source.chunks,
                sinks,
                key=data_key,
                salt=man.salt,
                layout=layout,
                name=man.name,
                content=man.content,
                index=source.index,
                header=man.encryption.header,
            )
            return rebuilt.manifest.share_roots[index]
        finally:
            sink.close()

    async def put() -> None:
        try:
            await client.put_share(
                node.url, storage_order(man, deal_id, index, node), owner, sink.body(lambda _n: None)
            )
        finally:
            sink.fail()  # the encoder never waits for a failed upload

    upload = asyncio.ensure_future(put())
    try:
        root = await asyncio.to_thread(run)
    except BaseException:
        upload.cancel()
        raise
    await upload
    if root != man.share_roots[index]:  # the node has refused it already (wrong root): say why
        raise PublishError(f"share {index} came out different when rebuilt: {path} changed since it was read")
