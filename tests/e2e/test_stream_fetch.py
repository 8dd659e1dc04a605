"""A whole fetch of a single-file v2 dataset streams the k systematic shares (market.stream_fetch):
nothing decoded while they serve, every block still verified, memory bounded by a window, and the
rest decoded from any k holders when a systematic one lies, breaks off or is gone."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
from collections.abc import AsyncGenerator, Iterable, Sequence
from pathlib import Path

import pytest

from contracts.terms import Purpose
from datasov.demo import _same_tree
from datasov.devnet import LocalNetwork
from market import buyer, stream_fetch
from market import holders as holders_mod
from market.directory import Directory, NodeInfo
from market.keystore import Keystore
from storage_node.client import BrokenResponse, NodeClient
from tests.support.fsyncs import record_fsyncs

from .conftest import Publish

pytestmark = pytest.mark.asyncio
SEGMENT = 4 * 256 * 1024  # the shared LAYOUT: 4-of-10, 256 KiB blocks


def _data(size: int) -> bytes:
    return b"".join(hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(-(-size // 32)))[:size]


class Streams(NodeClient):
    """The CLI's client, with whole-share streams watched (and, for one share, tampered with)."""

    def __init__(self, *, lie: int | None = None, cut: int | None = None, slow: int | None = None, at: int = 2) -> None:
        super().__init__()
        self.lie, self.cut, self.slow, self.at = lie, cut, slow, at
        self.served: dict[int, int] = {}  # share -> blocks streamed so far
        self.most_ahead = 0  # the most blocks one stream got ahead of another
        self.ranges = 0  # range requests (the decoder's fallback)

    async def share_blocks(
        self, url: str, dataset: str, index: int, sizes: Iterable[int]
    ) -> AsyncGenerator[bytes, None]:
        async for block in super().share_blocks(url, dataset, index, sizes):
            got = self.served[index] = self.served.get(index, 0) + 1
            if index == self.cut and got == self.at:
                raise BrokenResponse("node broke off its answer (injected)")
            if index == self.lie and got == self.at:
                block = bytes([block[0] ^ 1]) + block[1:]
            self.most_ahead = max(self.most_ahead, max(self.served.values()) - min(self.served.values()))
            if index == self.slow and got >= self.at:
                await asyncio.sleep(0.5)  # a slow holder (injected), never stalled: a block every 0.5 s
            if index == 0:
                await asyncio.sleep(0.005)  # share 0 is the slow one (injected): the others would race ahead
            yield block

    async def get_share(self, url: str, dataset: str, index: int, *, start: int = 0, end: int | None = None) -> bytes:
        self.ranges += 1
        return await super().get_share(url, dataset, index, start=start, end=end)


class Moved:
    """The network's directory, but one operator's node is given at an old URL where nothing
    answers, until the node is looked up again (:class:`market.directory.Rediscovers`)."""

    def __init__(self, inner: Directory, address: str) -> None:
        self.inner, self.address = inner, address
        with socket.socket() as s:  # a loopback port nothing listens on: connections are refused
            s.bind(("127.0.0.1", 0))
            self.old = f"http://127.0.0.1:{s.getsockname()[1]}"
        self.asked: list[str] = []

    async def nodes(self) -> Sequence[NodeInfo]:
        return await self.inner.nodes()

    async def url_of(self, address: str) -> str:
        return self.old if address.lower() == self.address.lower() else await self.inner.url_of(address)

    async def unreachable(self, address: str) -> str | None:
        self.asked.append(address)
        return await self.inner.url_of(address)


async def _fetch(
    net: LocalNetwork,
    lab: Keystore,
    publish: Publish,
    tmp_path: Path,
    client: Streams,
    size: int,
    moved: int | None = None,
    **fetch: float,
):
    src = tmp_path / "in.bin"
    src.write_bytes(_data(size))
    offer = await publish(src)
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()
    out = tmp_path / "out.bin"
    directory = net.directory if moved is None else Moved(net.directory, offer.pub.placements[moved].address)
    async with client:
        report = await buyer.fetch(net.chain, lab, directory, client, license_id, out, **fetch)
    assert out.read_bytes() == src.read_bytes()
    assert report.bytes_written == size
    return report


async def test_a_whole_fetch_streams_the_systematic_shares_and_decodes_nothing(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path
) -> None:
    client = Streams()
    report = await _fetch(net, lab, publish, tmp_path, client, 5 * SEGMENT + 12345)
    assert sorted(client.served) == [0, 1, 2, 3]
    assert client.ranges == 0
    assert report.shares_used == [0, 1, 2, 3]
    assert not report.excluded


async def test_streams_stay_within_the_window_whatever_the_size(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_fetch, "WINDOW_BYTES", 2 * SEGMENT)  # two segments held at most
    client = Streams()
    await _fetch(net, lab, publish, tmp_path, client, 12 * SEGMENT)
    assert 0 < client.most_ahead <= 3  # the window, plus the block in hand and the one being read


async def test_the_window_admits_only_segments_near_the_lowest_unwritten_one() -> None:
    window = stream_fetch.Window(2)
    await window.admit(1)
    waiting = asyncio.ensure_future(window.admit(3))
    await asyncio.sleep(0)
    assert not waiting.done()
    window.finish(1)  # written out of order: the floor does not move yet
    await asyncio.sleep(0)
    assert not waiting.done()
    assert window.floor == 0
    assert window.held == 1
    window.finish(0)
    window.finish(2)
    await asyncio.wait_for(waiting, 1)
    assert window.floor == 3
    assert window.held == 0


@pytest.mark.parametrize("fault", ["lie", "cut"])
async def test_a_lying_or_broken_systematic_holder_is_decoded_around(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path, fault: str
) -> None:
    client = Streams(**{fault: 1})
    report = await _fetch(net, lab, publish, tmp_path, client, 6 * SEGMENT + 999)
    assert 1 in report.excluded
    assert client.ranges > 0
    assert set(report.shares_used) - {0, 1, 2, 3}  # another holder's blocks stood in for share 1's


async def test_a_systematic_holder_that_lags_behind_the_others_is_hedged(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_fetch, "WINDOW_BYTES", 2 * SEGMENT)  # the others are two segments ahead at most
    client = Streams(slow=2)  # a block every 0.5 s from its second on: under the stall (4 x first_wait = 1 s)
    report = await _fetch(net, lab, publish, tmp_path, client, 12 * SEGMENT, first_wait=0.25)
    assert "behind" in report.excluded[2]
    assert client.served[2] < 12  # not waited for to the end
    assert set(report.shares_used) - {0, 1, 2, 3}  # a spare holder's blocks stood in for share 2's


async def test_a_systematic_holder_that_moved_is_looked_up_again_and_streamed_from_its_new_url(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path
) -> None:
    client = Streams()
    report = await _fetch(net, lab, publish, tmp_path, client, 3 * SEGMENT + 7, moved=1)
    assert 1 not in report.unreachable
    assert sorted(client.served) == [0, 1, 2, 3]  # share 1 streamed from where its node is now
    assert client.ranges == 0  # nothing decoded around it
    assert report.shares_used == [0, 1, 2, 3]


async def test_a_folder_streams_its_systematic_shares_too_and_is_unpacked_checked(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path
) -> None:
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "a.bin").write_bytes(_data(2 * SEGMENT + 5))
    (src / "sub" / "b.txt").write_bytes(b"hello " * 1000)
    (src / "empty").write_bytes(b"")
    offer = await publish(src)
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()
    client = Streams()
    async with client:
        await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "out")
    assert _same_tree(src, tmp_path / "out")
    assert not (tmp_path / "out.packed").exists()  # the packed copy is gone once unpacked
    assert not (tmp_path / "out.part").exists()
    assert sorted(client.served) == [0, 1, 2, 3]
    assert client.ranges == 0  # streamed, nothing decoded


async def test_a_fetch_given_the_checked_license_and_dataset_reads_neither_again(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(_data(2 * SEGMENT + 7))
    offer = await publish(src)
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()
    lic = await buyer.usable_license(net.chain, license_id)
    dataset = await net.chain.get_dataset(offer.dataset_id)
    reads: list[str] = []
    for name in ("get_license", "is_license_valid", "get_dataset"):
        real = getattr(net.chain, name)

        async def counted(*args: object, _real=real, _name=name) -> object:  # type: ignore[no-untyped-def]
            reads.append(_name)
            return await _real(*args)

        monkeypatch.setattr(net.chain, name, counted)
    out = tmp_path / "out.bin"
    async with NodeClient() as client:
        await buyer.fetch(net.chain, lab, net.directory, client, license_id, out, checked=(lic, dataset))
    assert out.read_bytes() == src.read_bytes()
    assert reads == []  # the CLI read them to pick the license: each was read once per fetch, now


async def test_a_systematic_holder_marked_faulty_that_answers_is_streamed_not_decoded_around(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Marked faulty on-chain (a missed proof) is not gone: its blocks are verified like any other's. On
    fresh 30-node devnets the holders of shares 0-2 were marked faulty minutes after the publish, and
    every 1 GiB fetch decoded from range requests instead of streaming (peak RSS 519 MiB, not 131)."""
    real = holders_mod.holders

    async def marked(*args: object) -> holders_mod.Holders:
        found = await real(*args)  # type: ignore[arg-type]
        return dataclasses.replace(found, faulty=frozenset({1}))

    monkeypatch.setattr(holders_mod, "holders", marked)
    client = Streams()
    report = await _fetch(net, lab, publish, tmp_path, client, 3 * SEGMENT + 99)
    assert report.faulty == [1]
    assert sorted(client.served) == [0, 1, 2, 3]
    assert client.ranges == 0  # nothing decoded
    assert report.shares_used == [0, 1, 2, 3]


async def test_a_fetched_file_and_its_rename_are_on_disk_when_the_fetch_returns(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = record_fsyncs(monkeypatch)
    await _fetch(net, lab, publish, tmp_path, Streams(), 2 * SEGMENT + 7)
    assert str(tmp_path / "out.bin.part") in synced  # the copy, before it is renamed
    assert str(tmp_path) in synced  # and the directory it is renamed in
