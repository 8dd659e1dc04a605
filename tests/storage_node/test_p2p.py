"""The libp2p DHT between real hosts on loopback: bootstrap, peer records, providers, the validator."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from storage_node.p2p import records
from storage_node.p2p.host import P2PHost

LIBP2P_ERRORS = ("not a valid PeerId", "Failed to store value", "Failed to read DHT message")


@pytest.fixture
async def pair() -> AsyncIterator[tuple[P2PHost, P2PHost]]:
    a = P2PHost(create_new_key_pair(), listen="/ip4/127.0.0.1/tcp/0")
    await a.start()
    b = P2PHost(create_new_key_pair(), listen="/ip4/127.0.0.1/tcp/0", bootstrap=a.full_addrs)
    try:
        await b.start()
        yield a, b
    finally:
        await b.stop()
        await a.stop()


def libp2p_complaints(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if any(e in r.getMessage() for e in LIBP2P_ERRORS)]


async def test_second_node_bootstraps_and_both_find_each_other(
    pair: tuple[P2PHost, P2PHost], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="libp2p")
    a, b = pair
    op_a, op_b = Account.create(), Account.create()
    await a.announce(op_a, http_url="http://127.0.1.1:7001", capacity=100, free=100)
    await b.announce(op_b, http_url="http://127.0.2.1:7002", capacity=200, free=150)
    # each record reached the other peer: read from a fresh lookup, not the announcer's own store
    got_b = await a.record_of(b.peer_id)
    got_a = await b.record_of(a.peer_id)
    assert got_b is not None
    assert (got_b.operator, got_b.http_url) == (op_b.address, "http://127.0.2.1:7002")
    assert got_a is not None
    assert got_a.operator == op_a.address
    assert [r.peer_id for r in await a.find_nodes()] == [b.peer_id]
    assert [r.peer_id for r in await b.find_nodes(min_free=101)] == []
    await b.provide_share("ds1", 3)
    holders = await a.find_share("ds1", 3)
    assert [r.operator for r in holders] == [op_b.address]
    assert await a.find_share("ds1", 4) == []
    assert libp2p_complaints(caplog) == []


def _signed(operator: LocalAccount, key_pair: KeyPair) -> tuple[records.PeerRecord, bytes]:
    record = records.PeerRecord(
        peer_id=ID.from_pubkey(key_pair.public_key).to_base58(),
        operator=operator.address,
        http_url="http://127.0.3.1:7003",
        capacity=10,
        free=10,
        price=0,
        timestamp=records.now(),
        public_key=key_pair.public_key.serialize().hex(),
    )
    return record, records.sign_record(record, operator, key_pair)


def test_validator_rejects_a_record_under_another_peers_key() -> None:
    record, raw = _signed(Account.create(), create_new_key_pair())
    other = create_new_key_pair()
    validator = records.PeerRecordValidator()
    validator.validate(records.dht_key(record.peer_id), raw)  # its own key: fine
    with pytest.raises(records.RecordError, match="another peer"):
        validator.validate(records.dht_key(ID.from_pubkey(other.public_key).to_base58()), raw)


def test_validator_rejects_a_forged_operator_signature() -> None:
    victim, forger = Account.create(), Account.create()
    key_pair = create_new_key_pair()
    record, _ = _signed(victim, key_pair)
    forged = json.loads(records.sign_record(record, forger, key_pair))  # signed by the wrong key
    with pytest.raises(records.RecordError, match="operator signature"):
        records.PeerRecordValidator().validate(records.dht_key(record.peer_id), json.dumps(forged).encode())


async def test_a_bad_record_is_refused_by_the_remote_peer_and_logged(
    pair: tuple[P2PHost, P2PHost], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    victim, forger = Account.create(), Account.create()
    record, _ = _signed(victim, b.key_pair)
    forged = records.sign_record(record, forger, b.key_pair)
    caplog.set_level(logging.INFO, logger="datasov")
    assert b._dht is not None
    store_at = b._dht.value_store._store_at_peer  # the wire path, past the sender's own validator
    key = records.dht_key(b.peer_id).encode()
    assert not await b._call(store_at, ID.from_base58(a.peer_id), key, forged)
    assert await a.record_of(b.peer_id) is None
    assert any("rejected peer record" in r.getMessage() for r in caplog.records)
