"""DatasetReader on the in-process network: files, ranges, file objects, and why a license cannot read."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from contracts.terms import TRAINING_ALLOWED, Purpose
from datasov.devnet import LocalNetwork
from erasure.pipeline import Layout
from market import buyer, reader, reader_sync
from market.keystore import Keystore
from storage_node.client import NodeClient

from .conftest import Publish

pytestmark = pytest.mark.asyncio
SMALL = Layout(k=3, n=6, block_size=16 * 1024, leaf_size=1024, message_size=16 * 1024 - 16)
SEGMENT = 3 * 16 * 1024


def folder(root: Path) -> dict[str, bytes]:
    files = {
        "labels.csv": b"id,label\n" + b"".join(b"%d,%d\n" % (i, i % 3) for i in range(2000)),
        "images/a.bin": os.urandom(200_000),
        "images/b.bin": os.urandom(5 * SEGMENT + 7),
        "empty.txt": b"",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


async def licensed(publish: Publish, net: LocalNetwork, lab: Keystore, path: Path, **kw: object) -> int:
    offer = await publish(path, layout=SMALL, **kw)
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()
    return license_id


async def test_files_stat_ranges_and_only_the_covering_segments(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    files = folder(tmp_path / "corpus")
    license_id = await licensed(publish, net, lab, tmp_path / "corpus")
    async with await reader.DatasetReader.open(net.chain, lab, net.directory, client, license_id, prefetch=0) as r:
        assert sorted(e.path for e in r.files()) == sorted(files)
        assert sorted(e.path for e in r.listdir("")) == ["empty.txt", "images", "labels.csv"]
        b = r.stat("images/b.bin")
        assert b.size == len(files["images/b.bin"])
        assert b.sha256 == hashlib.sha256(files["images/b.bin"]).digest()
        before = r.ranges.segments_decoded
        assert (
            await r.read_file("images/b.bin", 2 * SEGMENT + 5, 4096)
            == files["images/b.bin"][2 * SEGMENT + 5 : 2 * SEGMENT + 4101]
        )
        assert r.ranges.segments_decoded - before <= 2  # only what covers 4 KiB
        for rel, data in files.items():
            assert await r.read_file(rel) == data
        with pytest.raises(reader.ReaderError):
            r.stat("nope.csv")
        with pytest.raises(reader.ReaderError):
            await r.read_file("images")


async def test_the_sync_face_gives_seekable_file_objects(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    files = folder(tmp_path / "corpus")
    license_id = await licensed(publish, net, lab, tmp_path / "corpus")

    async def opener() -> tuple[reader.DatasetReader, object]:
        own_client = NodeClient(timeout=10, retries=2)
        r = await reader.DatasetReader.open(net.chain, lab, net.directory, own_client, license_id)

        async def cleanup() -> None:
            await own_client.close()

        return r, cleanup

    def use() -> None:
        # its own loop in a thread; the chain object is the test loop's, so this test only reads
        # through the sync face's loop what that loop can reach: the nodes over HTTP
        with reader_sync.SyncDatasetReader(opener, timeout=60) as sync:  # type: ignore[arg-type]
            with sync.open("images/a.bin") as f:
                data = files["images/a.bin"]
                assert f.read(10) == data[:10]
                f.seek(-100, os.SEEK_END)
                assert f.read() == data[-100:]
                f.seek(150_000)
                assert f.read(1000) == data[150_000:151_000]
                assert f.seekable()
                assert not f.writable()
            assert sync.read_file("labels.csv") == files["labels.csv"]

    await asyncio.to_thread(use)


async def test_why_a_license_cannot_read(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    data = tmp_path / "one.bin"
    data.write_bytes(os.urandom(10_000))
    revocable = replace(TRAINING_ALLOWED, revocable=True, license_duration=3600)
    offer = await publish(data, layout=SMALL, terms=revocable)
    pending = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    with pytest.raises(buyer.KeyNotDelivered):
        await reader.DatasetReader.open(net.chain, lab, net.directory, client, pending)
    await offer.agent.tick()
    async with await reader.DatasetReader.open(net.chain, lab, net.directory, client, pending) as r:
        assert [e.path for e in r.files()] == ["one.bin"]
        assert await r.read_range(100, 50) == data.read_bytes()[100:150]
    snapshot = await net.chain.snapshot()
    try:
        await net.chain.advance_time(3601)  # type: ignore[attr-defined]
        with pytest.raises(reader.LicenseExpired):
            await reader.DatasetReader.open(net.chain, lab, net.directory, client, pending)
    finally:
        await net.chain.revert(snapshot)
    await net.chain.revoke_consent(offer.agent.account, offer.dataset_id)
    with pytest.raises(reader.ConsentEnded):
        await reader.DatasetReader.open(net.chain, lab, net.directory, client, pending)


class CountingReads(NodeClient):
    """A node client that counts manifest downloads and health probes."""

    def __init__(self) -> None:
        super().__init__(timeout=10, retries=2)
        self.manifests = 0
        self.probes = 0

    async def get_manifest(self, url: str, dataset: str) -> bytes:
        self.manifests += 1
        return await super().get_manifest(url, dataset)

    async def health(self, url: str) -> dict[str, object]:
        self.probes += 1
        return await super().health(url)


async def test_a_v2_fetch_checks_the_license_key_and_manifest_once(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = folder(tmp_path / "corpus")
    license_id = await licensed(publish, net, lab, tmp_path / "corpus")
    keys = 0
    receive_key = buyer.receive_key

    async def counted_key(*args: object, **kw: object) -> bytes:
        nonlocal keys
        keys += 1
        return await receive_key(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(buyer, "receive_key", counted_key)
    async with CountingReads() as client:
        report = await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "out")
        assert (client.manifests, keys) == (1, 1)  # one holder served it; one key opened and checked
        assert client.probes == len(report.holders)  # each holder probed once
    for rel, data in files.items():
        assert (tmp_path / "out" / rel).read_bytes() == data
