"""Node announcements (contracts.announcements): signed, canonical, size-limited, round-tripping."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.announcements import (
    DOMAIN,
    MAX_ANNOUNCEMENT,
    Announcement,
    AnnouncementError,
    ForgedAnnouncement,
    MalformedAnnouncement,
    SignedAnnouncement,
)
from contracts.devchain import dev_account

OPERATOR, OTHER = dev_account(5), dev_account(6)


def sample(**kw: object) -> Announcement:
    fields: dict[str, object] = {
        "operator": OPERATOR.address,
        "http_url": "http://127.0.1.1:7401",
        "chain_id": 31337,
        "capacity": 50 << 30,
        "ask": 10**15,
        "region": "eu-west",
        "peer_id": "12D3KooWGzh7Y8sXmRKXL3nWSo2CF2jXM9PRsN6x2D8uBwEFCL1d",
        "multiaddrs": ("/ip4/127.0.1.1/tcp/7501",),
        "issued_at": 1_700_000_000,
    }
    fields.update(kw)
    return Announcement(**fields)  # type: ignore[arg-type]


def test_sign_verify_and_round_trip() -> None:
    signed = sample().sign(OPERATOR)
    raw = signed.to_bytes()
    assert len(raw) <= MAX_ANNOUNCEMENT
    back = SignedAnnouncement.open(raw)
    assert back == signed
    assert back.verify() == OPERATOR.address
    assert sample().canonical().startswith(DOMAIN.encode() + b"\n")


def test_a_record_signed_by_another_key_is_forged() -> None:
    ann = sample()
    with pytest.raises(AnnouncementError):
        ann.sign(OTHER)  # refused before signing
    forged = SignedAnnouncement(
        ann, SignedAnnouncement.from_bytes(sample(operator=OTHER.address).sign(OTHER).to_bytes()).signature
    )
    with pytest.raises(ForgedAnnouncement):
        forged.verify()
    with pytest.raises(ForgedAnnouncement):
        SignedAnnouncement.open(forged.to_bytes())


def test_changing_any_field_breaks_the_signature() -> None:
    signed = sample().sign(OPERATOR)
    obj = json.loads(signed.to_bytes())
    obj["announcement"]["ask"] = 1
    with pytest.raises(ForgedAnnouncement):
        SignedAnnouncement.open(json.dumps(obj).encode())


@pytest.mark.parametrize(
    "change",
    [
        {"operator": "0x1234"},
        {"http_url": "ftp://x"},
        {"http_url": "http://127.0.0.1:80/path"},
        {"http_url": "http://" + "a" * 300},
        {"ask": -1},
        {"capacity": 1 << 64},
        {"region": "x" * 33},
        {"region": "bad\nregion"},
        {"peer_id": "0OIl"},
        {"multiaddrs": ("tcp/1",)},
        {"multiaddrs": tuple(f"/ip4/127.0.0.1/tcp/{i}" for i in range(9))},
        {"version": 2},
        {"issued_at": True},
    ],
)
def test_malformed_fields_are_refused_by_name(change: dict[str, object]) -> None:
    with pytest.raises(MalformedAnnouncement):
        sample(**change)


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[]", b'{"announcement": {}, "signature": "0x00"}', b"{" + b" " * MAX_ANNOUNCEMENT + b"}"],
)
def test_malformed_wire_forms_are_refused(raw: bytes) -> None:
    with pytest.raises(MalformedAnnouncement):
        SignedAnnouncement.from_bytes(raw)


def test_unknown_fields_are_refused() -> None:
    obj = json.loads(sample().sign(OPERATOR).to_bytes())
    obj["announcement"]["extra"] = 1
    with pytest.raises(MalformedAnnouncement):
        SignedAnnouncement.from_bytes(json.dumps(obj).encode())


def test_newest_wins_deterministically() -> None:
    old, new = sample(issued_at=10).sign(OPERATOR), sample(issued_at=11).sign(OPERATOR)
    assert new.newer_than(old)
    assert not old.newer_than(new)
    a, b = sample(issued_at=10, ask=1).sign(OPERATOR), sample(issued_at=10, ask=2).sign(OPERATOR)
    assert a.newer_than(b) != b.newer_than(a)


def test_ipv6_host_and_fee() -> None:
    ann = sample(http_url="http://[::1]:7401", ask=3 << 30)
    assert ann.host == "::1"
    assert sample().host == "127.0.1.1"
    assert ann.fee_per_share_epoch(1 << 30) == 3 << 30
    assert sample(ask=1).fee_per_share_epoch(1) == 1  # rounded up


@given(
    ask=st.integers(0, (1 << 128) - 1),
    capacity=st.integers(0, (1 << 64) - 1),
    region=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _./\-]{0,31}", fullmatch=True),
    port=st.integers(1, 65535),
    addrs=st.lists(st.integers(1, 65535).map(lambda p: f"/ip4/127.0.2.1/tcp/{p}"), max_size=8),
    issued_at=st.integers(0, (1 << 40) - 1),
)
def test_json_round_trip_is_exact(
    ask: int, capacity: int, region: str, port: int, addrs: list[str], issued_at: int
) -> None:
    ann = sample(
        ask=ask,
        capacity=capacity,
        region=region,
        http_url=f"http://127.0.3.1:{port}",
        multiaddrs=tuple(addrs),
        issued_at=issued_at,
    )
    assert Announcement.from_json(json.loads(json.dumps(ann.to_json()))) == ann
    raw = SignedAnnouncement(ann, b"\x01" * 65).to_bytes()
    assert SignedAnnouncement.from_bytes(raw).announcement == ann
