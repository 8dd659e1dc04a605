"""The node's HTTP API over real loopback sockets: happy paths, every refusal, faults, loop lag."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace

import pytest

from erasure import merkle
from storage_node.client import NodeClient, NodeUnavailable, RemoteError
from storage_node.errors import WrongNode
from storage_node.node import StorageNode
from storage_node.orders import StorageOrder

from .conftest import NodeFactory, publisher

pytestmark = pytest.mark.asyncio(loop_scope="function")

LEAF, BLOCK = 1024, 64 * 1024
DS = "cd" * 32


def order_for(node: StorageNode, data: bytes, *, index: int = 0, dataset: str = DS, **kw: object) -> StorageOrder:
    return StorageOrder.new(
        node=node.address,
        dataset=dataset,
        index=index,
        share_root=merkle.root(data, LEAF),
        size=len(data),
        leaf_size=LEAF,
        block_size=BLOCK,
        **kw,
    )  # type: ignore[arg-type]


async def test_twelve_nodes_start_and_answer(network: list[StorageNode], client: NodeClient) -> None:
    healths = await asyncio.gather(*(client.health(n.url) for n in network))
    assert len({h["address"] for h in healths}) == 12
    assert all(h["status"] == "ok" for h in healths)


async def test_upload_download_ranges_roots_proofs(make_node: NodeFactory, client: NodeClient) -> None:
    node = await make_node()
    data = os.urandom(5 * BLOCK + 1234)
    owner = publisher()
    result = await client.put_share(node.url, order_for(node, data), owner, data)
    assert result["root"] == merkle.root(data, LEAF).hex()
    assert result["signer"] == owner.address
    assert await client.get_share(node.url, DS, 0) == data
    assert await client.get_share(node.url, DS, 0, start=BLOCK - 10, end=BLOCK + 10) == data[BLOCK - 10 : BLOCK + 10]
    assert await client.head(node.url, DS, 0) == (len(data), merkle.root(data, LEAF))
    assert await client.roots(node.url, DS, 0) == merkle.block_roots(data, BLOCK, LEAF)
    leaf, proof, root = await client.proof(node.url, DS, 0, 77)
    assert merkle.verify_proof(merkle.root(data, LEAF), leaf, proof)
    assert root == merkle.root(data, LEAF)


async def test_streamed_upload(make_node: NodeFactory, client: NodeClient) -> None:
    node = await make_node()
    data = os.urandom(3 * BLOCK)

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(data), 10_000):
            yield data[i : i + 10_000]

    await client.put_share(node.url, order_for(node, data), publisher(), chunks())
    assert await client.get_share(node.url, DS, 0) == data


async def expect(status: int, code: str, coro: object) -> None:
    with pytest.raises(RemoteError) as info:
        await coro  # type: ignore[misc]
    assert (info.value.status, info.value.code) == (status, code), info.value


async def test_refusals_change_nothing(make_node: NodeFactory, client: NodeClient) -> None:
    node = await make_node(capacity=BLOCK * 8, max_share_size=BLOCK * 4)
    data = os.urandom(2 * BLOCK)
    owner = publisher()
    url = NodeClient.share_url(node.url, DS, 0)
    session = client.session

    async def raw_put(headers: dict[str, str], body: bytes = data, target: str = url) -> tuple[int, str]:
        async with session.put(target, data=body, headers=headers) as resp:
            return resp.status, (await resp.json())["error"]

    good = order_for(node, data)
    headers = good.headers(owner)
    assert await raw_put({}) == (400, "bad_order")  # no order at all
    assert await raw_put({**headers, "X-Datasov-Order": "%%%"}) == (400, "bad_order")
    assert await raw_put({"X-Datasov-Order": headers["X-Datasov-Order"]}) == (401, "bad_signature")
    assert await raw_put({**headers, "X-Datasov-Signature": "0x1234"}) == (401, "bad_signature")
    await expect(403, "wrong_node", client.put_share(node.url, replace(good, node=owner.address), owner, data))
    await expect(
        403, "order_expired", client.put_share(node.url, replace(good, expiry=int(time.time()) - 1), owner, data)
    )
    other_share = replace(good, index=1).headers(owner)
    assert await raw_put(other_share) == (400, "bad_order")  # the order names another share than the URL
    big = os.urandom(5 * BLOCK)
    await expect(413, "request_entity_too_large", client.put_share(node.url, order_for(node, big), owner, big))
    assert await raw_put(headers, body=data[:-1]) == (400, "bad_order")  # length differs from the order
    await expect(
        422,
        "upload_mismatch",
        client.put_share(node.url, replace(order_for(node, data), share_root="11" * 32), owner, data),
    )
    await expect(404, "share_not_found", client.get_share(node.url, DS, 0))
    await expect(404, "not_found", client.get_share(node.url, "../../etc/passwd", 0))  # never reaches a route
    await expect(404, "share_not_found", client.get_share(node.url, "ZZ" * 32, 0))
    await expect(404, "share_not_found", client.get_share(node.url, DS, 999))
    # a good upload, then its replay
    await client.put_share(node.url, good, owner, data)
    await expect(409, "replayed", client.put_share(node.url, good, owner, data))
    await expect(409, "share_exists", client.put_share(node.url, order_for(node, data), owner, data))
    # disk full
    for i in (1, 2, 3):
        await client.put_share(node.url, order_for(node, data, index=i), owner, data)
    await expect(507, "insufficient_storage", client.put_share(node.url, order_for(node, data, index=4), owner, data))
    await expect(416, "requested_range_not_satisfiable", client.get_share(node.url, DS, 0, start=len(data) + 5))
    health = await client.health(node.url)
    assert health["used"] == 4 * len(data)
    assert not list((node.config.home / "tmp").iterdir())
    assert await client.get_share(node.url, DS, 0) == data


async def test_only_authorised_signers_may_store(make_node: NodeFactory, client: NodeClient) -> None:
    owner, intruder = publisher(), publisher()

    async def only_owner(signer: str, order: StorageOrder) -> None:
        if signer != owner.address:
            raise WrongNode(f"{signer} has no deal with this node")

    node = await make_node(authorize=only_owner)
    data = os.urandom(BLOCK)
    good = order_for(node, data)
    await expect(403, "wrong_node", client.put_share(node.url, good, intruder, data))
    # a tampered order recovers to another address than its signer's: refused the same way
    headers = good.headers(owner)
    headers["X-Datasov-Order"] = replace(good, deal_id=7).headers(owner)["X-Datasov-Order"]
    async with client.session.put(NodeClient.share_url(node.url, DS, 0), data=data, headers=headers) as resp:
        assert resp.status == 403
    await client.put_share(node.url, good, owner, data)


async def test_owner_ordered_deletion(make_node: NodeFactory, client: NodeClient) -> None:
    node = await make_node()
    owner, stranger = publisher(), publisher()
    data = os.urandom(BLOCK)
    await client.put_share(node.url, order_for(node, data), owner, data)
    await expect(403, "not_authorized", client.delete_share(node.url, DS, 0, node.address, stranger))
    await expect(403, "wrong_node", client.delete_share(node.url, DS, 0, stranger.address, owner))
    await client.delete_share(node.url, DS, 0, node.address, owner)
    await expect(404, "share_not_found", client.get_share(node.url, DS, 0))
    assert (await client.health(node.url))["used"] == 0


async def test_a_hanging_node_times_out_the_client() -> None:
    """A node that accepts the connection and never answers: the client gives up, it does not hang."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # keep the connection open, say nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with NodeClient(timeout=0.3, retries=2, backoff=0.01) as hung:
            with pytest.raises(NodeUnavailable):
                await hung.get_share(f"http://127.0.0.1:{port}", DS, 0)
        assert len(accepted) == 2  # one attempt per retry, each timed out
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


async def test_corrupted_share_is_never_served(make_node: NodeFactory, client: NodeClient) -> None:
    node = await make_node()
    data = os.urandom(3 * BLOCK)
    await client.put_share(node.url, order_for(node, data), publisher(), data)
    assert node.store is not None
    path = node.store.share_path(DS, 0)
    raw = bytearray(path.read_bytes())
    raw[10] ^= 0xFF
    path.write_bytes(bytes(raw))
    await expect(503, "share_corrupted", client.get_share(node.url, DS, 0))
    await expect(404, "share_not_found", client.get_share(node.url, DS, 0))
    metrics = await (await client.session.get(node.url + "/metrics")).text()
    assert "datasov_corrupt_shares 1.0" in metrics
    assert (await client.health(node.url))["corrupt_shares"] == 1


async def test_stalled_upload_times_out_and_leaves_nothing(make_node: NodeFactory) -> None:
    node = await make_node(idle_timeout=0.3)
    data = os.urandom(2 * BLOCK)
    headers = order_for(node, data).headers(publisher())
    host, port = node.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"PUT /v1/shares/{DS}/0 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + data[:1000])  # then hang
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    assert b" 408 " in status_line
    writer.close()
    await writer.wait_closed()
    assert node.store is not None
    assert await node.store.used() == 0
    assert not list((node.config.home / "tmp").iterdir())


class LongestCallback:
    """The loop thread's CPU time in the longest callback the event loop runs while installed.

    CPU time of the loop's own thread (``time.thread_time``), not wall time: a machine loaded by other
    processes stretches the wall time of every callback, but not the computing one callback does
    before it gives the loop back (work that belongs in a thread: hashing, encoding, big copies)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.cpu, self.wall, self.count, self.what = 0.0, 0.0, 0, ""
        run = asyncio.events.Handle._run

        def timed(handle: asyncio.Handle) -> None:
            cpu, wall = time.thread_time(), time.perf_counter()
            run(handle)
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            self.count += 1
            self.wall = max(self.wall, wall)
            if cpu > self.cpu:
                self.cpu, self.what = cpu, repr(handle)

        monkeypatch.setattr(asyncio.events.Handle, "_run", timed)


async def test_loop_stays_responsive_during_a_256_mib_upload(
    make_node: NodeFactory, client: NodeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No callback of the loop serving a 256 MiB upload computes for 50 ms: writing and hashing are in
    threads, so the node (and the client beside it in this loop) answer others meanwhile."""
    node = await make_node(capacity=1 << 30)
    data = os.urandom(256 << 20)
    order = StorageOrder.new(
        node=node.address,
        dataset=DS,
        index=0,
        share_root=merkle.root(data, LEAF, 2),
        size=len(data),
        leaf_size=LEAF,
        block_size=256 * 1024,
    )
    ticks_at: list[int] = []  # the ticker's count as each chunk is sent
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:  # another task on the same loop: it must keep running during the upload
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.005)
            ticks += 1

    async def chunks():  # type: ignore[no-untyped-def]
        view = memoryview(data)
        for i in range(0, len(data), 1 << 20):
            ticks_at.append(ticks)
            yield bytes(view[i : i + (1 << 20)])

    tick = asyncio.create_task(ticker())
    longest = LongestCallback(monkeypatch)
    await client.put_share(node.url, order, publisher(), chunks())
    monkeypatch.undo()
    done.set()
    await tick
    assert await client.get_share(node.url, DS, 0, start=len(data) - 100, end=len(data)) == data[-100:]
    assert longest.count > 256  # the upload went through the timed loop
    assert ticks_at[-1] > ticks_at[0], "the other task never ran while the chunks were sent"
    assert longest.cpu < 0.050, (
        f"a loop callback computed for {longest.cpu * 1000:.1f} ms of CPU (longest wall time of any: "
        f"{longest.wall * 1000:.1f} ms): {longest.what}"
    )


async def test_manifests_are_content_addressed_and_only_for_held_datasets(
    make_node: NodeFactory, client: NodeClient
) -> None:
    import io

    from erasure import envelope
    from erasure.pipeline import Layout, encode

    node = await make_node()
    sinks = [io.BytesIO() for _ in range(3)]
    layout = Layout(k=2, n=3, block_size=BLOCK, leaf_size=LEAF)
    man = encode([os.urandom(200_000)], sinks, key=envelope.new_data_key(), layout=layout).manifest
    dataset, raw = man.hash().hex(), man.canonical_bytes()
    await expect(404, "share_not_found", client.put_manifest(node.url, dataset, raw))  # holds nothing of it yet
    share = sinks[1].getvalue()
    order = order_for(node, share, index=1, dataset=dataset)
    assert order.share_root == man.share_roots[1].hex()
    await client.put_share(node.url, order, publisher(), share)
    await expect(422, "bad_manifest", client.put_manifest(node.url, "ab" * 32, raw))  # not its hash
    await expect(422, "bad_manifest", client.put_manifest(node.url, dataset, b"{not json"))
    await expect(413, "request_entity_too_large", client.put_manifest(node.url, dataset, b" " * 70_000))
    await expect(404, "share_not_found", client.get_manifest(node.url, dataset))  # nothing was stored
    await client.put_manifest(node.url, dataset, raw)
    assert await client.get_manifest(node.url, dataset) == raw
    await expect(404, "share_not_found", client.get_manifest(node.url, "..%2F..%2Fetc"))


@pytest.mark.parametrize("where", [5000, 3 * BLOCK + 100])  # a leaf a small read touches; the short last block
async def test_small_reads_verify_leaf_by_leaf_and_catch_corruption(
    make_node: NodeFactory, client: NodeClient, where: int
) -> None:
    node = await make_node()
    data = os.urandom(3 * BLOCK + 5000)
    await client.put_share(node.url, order_for(node, data), publisher(), data)
    start = where - where % 4096
    for _ in range(2):  # the first read verifies the block and keeps its leaf digests; the second uses them
        assert await client.get_share(node.url, DS, 0, start=start, end=start + 900) == data[start : start + 900]
    assert node.store is not None
    path = node.store.share_path(DS, 0)
    raw = bytearray(path.read_bytes())
    raw[where] ^= 0x01
    path.write_bytes(bytes(raw))  # the page cache now holds the corrupted bytes
    await expect(503, "share_corrupted", client.get_share(node.url, DS, 0, start=start, end=start + 900))
    await expect(404, "share_not_found", client.get_share(node.url, DS, 0, start=0, end=10))
