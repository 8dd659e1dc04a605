"""libp2p on loopback: identities, signed records, and Kademlia discovery through the trio bridge."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio
from eth_account import Account

from erasure import merkle
from storage_node.client import NodeClient
from storage_node.orders import StorageOrder
from storage_node.p2p import records
from storage_node.p2p.host import P2PHost
from storage_node.p2p.identity import load_or_create_p2p_key

from .conftest import NodeFactory


@pytest_asyncio.fixture(loop_scope="function")
async def peers(tmp_path: Path) -> AsyncIterator[list[P2PHost]]:
    first = P2PHost(load_or_create_p2p_key(tmp_path / "p0"))
    await first.start()
    others = [P2PHost(load_or_create_p2p_key(tmp_path / f"p{i}"), bootstrap=first.full_addrs) for i in range(1, 4)]
    await asyncio.gather(*(p.start() for p in others))
    hosts = [first, *others]
    for p in others:  # the bootstrap peer learns of everyone
        await first.connect(p.full_addrs[0])
    yield hosts
    await asyncio.gather(*(p.stop() for p in hosts))


def test_p2p_key_is_persistent_and_private(tmp_path: Path) -> None:
    a = load_or_create_p2p_key(tmp_path)
    b = load_or_create_p2p_key(tmp_path)
    assert a.private_key.to_bytes() == b.private_key.to_bytes()
    assert stat.S_IMODE((tmp_path / "p2p.key").stat().st_mode) == 0o600


@pytest.mark.asyncio(loop_scope="function")
async def test_nodes_and_shares_are_found_through_the_dht(peers: list[P2PHost]) -> None:
    operators = [Account.create() for _ in peers]
    for i, (p, op) in enumerate(zip(peers, operators, strict=True)):
        await p.announce(op, http_url=f"http://127.0.0.1:{9000 + i}", capacity=100, free=10 * i)
    await peers[2].provide_share("ab" * 32, 4)
    holders = await peers[3].find_share("ab" * 32, 4)
    assert [(r.peer_id, r.operator, r.http_url) for r in holders] == [
        (peers[2].peer_id, operators[2].address, "http://127.0.0.1:9002")
    ]
    roomy = await peers[1].find_nodes(min_free=15)
    assert sorted(r.peer_id for r in roomy) == sorted(p.peer_id for p in peers[2:])
    assert sorted(r.peer_id for r in await peers[0].find_nodes()) == sorted(p.peer_id for p in peers[1:])
    assert await peers[0].find_share("cd" * 32, 0) == []


def test_records_refuse_forgery(tmp_path: Path) -> None:
    kp, other = load_or_create_p2p_key(tmp_path / "a"), load_or_create_p2p_key(tmp_path / "b")
    op = Account.create()
    from libp2p.peer.id import ID

    pid = ID.from_pubkey(kp.public_key).to_base58()
    record = records.PeerRecord(
        pid, op.address, "http://127.0.0.1:1", 1, 1, 0, records.now(), kp.public_key.serialize().hex()
    )
    raw = records.sign_record(record, op, kp)
    assert records.open_record(raw) == record
    envelope = json.loads(raw)
    envelope["record"]["http_url"] = "http://evil"  # any change breaks both signatures
    with pytest.raises(records.RecordError):
        records.open_record(json.dumps(envelope).encode())
    with pytest.raises(records.RecordError):  # claims an operator whose key did not sign it
        records.open_record(records.sign_record(replace(record, operator=Account.create().address), op, kp))
    with pytest.raises(records.RecordError):  # signed by another libp2p key than the record names
        records.open_record(records.sign_record(record, op, other))
    with pytest.raises(records.RecordError):
        records.PeerRecordValidator().validate(records.dht_key("someone-else"), raw)


@pytest.mark.asyncio(loop_scope="function")
async def test_an_uploaded_share_is_found_and_fetched_through_discovery(make_node: NodeFactory) -> None:
    seed = await make_node("seed", p2p_listen="/ip4/127.0.0.1/tcp/0")
    assert seed.p2p is not None
    boot = tuple(seed.p2p.full_addrs)
    holder = await make_node("holder", p2p_listen="/ip4/127.0.0.1/tcp/0", bootstrap=boot)
    seeker = await make_node("seeker", p2p_listen="/ip4/127.0.0.1/tcp/0", bootstrap=boot)
    assert holder.p2p is not None
    assert seeker.p2p is not None
    for n in (holder, seeker):
        await seed.p2p.connect(n.p2p.full_addrs[0])  # type: ignore[union-attr]
    data = os.urandom(100_000)
    order = StorageOrder.new(
        node=holder.address,
        dataset="ab" * 32,
        index=3,
        share_root=merkle.root(data, 1024),
        size=len(data),
        leaf_size=1024,
        block_size=4096,
    )
    async with NodeClient() as client:
        await client.put_share(holder.url, order, Account.create(), data)
        found = await seeker.p2p.find_share("ab" * 32, 3)
        assert [(r.operator, r.http_url) for r in found] == [(holder.address, holder.url)]
        assert await client.get_share(found[0].http_url, "ab" * 32, 3) == data
        nodes = {r.operator: r for r in await seeker.p2p.find_nodes()}
        assert set(nodes) == {seed.address, holder.address}  # the other nodes, not itself
        assert nodes[holder.address].free == holder.config.capacity - len(data)  # re-announced after the upload
