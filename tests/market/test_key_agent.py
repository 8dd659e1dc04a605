"""The owner's key agent under hostile purchases (issue 11, item 4) and near the delivery
deadline (item 5): every purchase is decided alone, the checkpoint moves per event, and no key
leaves the agent when its delivery could be mined after the deadline."""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import delivery, errors
from contracts.chain import Chain
from contracts.models import Dataset, Deployment, License, LicenseStatus
from contracts.terms import TRAINING_ALLOWED, Purpose
from erasure import envelope
from market import key_agent
from market.keystore import Keystore

from .conftest import BUYER, OWNER, Published, make_servable

P = delivery.P
GOOD_SECRET = delivery.new_secret()
GOOD_KEY = delivery.public_key(GOOD_SECRET)
MANIFEST = b"\x07" * 32
DATA_KEY = envelope.new_data_key()


@pytest_asyncio.fixture
async def published(chain: Chain, published: Published) -> Published:
    """The conftest dataset, made servable (an accepted deal): purchases need one."""
    await make_servable(chain, published.dataset_id, published.manifest.n)
    return published


def _point(x: int, y: int) -> tuple[int, int]:
    return x, y


# ---------------------------------------------------------------- a scripted, hostile chain ----


@dataclass
class Purchase:
    """One purchase event and what the chain answers about its license."""

    license_id: int
    key: tuple[Any, Any]  # (x, y) as the event carries them: anything a hostile feed could hold
    status: LicenseStatus = LicenseStatus.PENDING
    hash_matches: bool = True
    revert: str = ""  # a named revert deliverKey answers with


@dataclass
class FakeChain:
    """Just enough of :class:`contracts.chain.Chain` for the agent, fed with hostile purchases."""

    events: list[Purchase]
    now: int = 1_000
    deadline: int = 5_000
    delivered: list[int] = field(default_factory=list)
    unreachable_at: int | None = None  # license id whose delivery finds the chain unreachable (once)

    def __post_init__(self) -> None:
        addresses = ["0x" + c * 20 for c in ("11", "22", "33", "44")]
        self.deployment = Deployment(1, *addresses, deployed_block=0, epoch_blocks=20, delivery_window=3600)
        self.w3 = self

    @property
    def eth(self) -> FakeChain:
        return self

    async def get_block(self, number: int) -> dict[str, Any]:
        return {"hash": b"\x01" * 32}

    async def block_number(self) -> int:
        return len(self.events)

    async def timestamp(self) -> int:
        return self.now

    async def purchases(self, start: int, end: int) -> list[dict[str, Any]]:
        out = []
        for block, p in enumerate(self.events, start=1):
            if start <= block <= end:
                x, y = p.key
                out.append(
                    {"licenseId": p.license_id, "datasetId": 1, "buyer": BUYER.address, "buyerKeyX": x,
                     "buyerKeyY": y, "blockNumber": block, "logIndex": 0}
                )  # fmt: skip
        return out

    def _purchase(self, license_id: int) -> Purchase:
        return next(p for p in self.events if p.license_id == license_id)

    async def get_dataset(self, dataset_id: int) -> Dataset:
        return Dataset(dataset_id, OWNER.address, "", "", 0, 1, 1, 1, 1, 2, 1, 0, MANIFEST, b"", b"", b"")

    async def get_license(self, license_id: int) -> License:
        p = self._purchase(license_id)
        try:
            key_hash = delivery.key_hash(delivery.encode_point(int(p.key[0]), int(p.key[1])))
        except (ValueError, TypeError, OverflowError):
            key_hash = b"\x00" * 32
        if not p.hash_matches:
            key_hash = bytes(32)
        return License(
            license_id, 1, BUYER.address, Purpose.AI_TRAINING, p.status, True, False, 1, 0, self.deadline, 0, 0, 0,
            "", 0, key_hash, b"", b"",
        )  # fmt: skip

    async def consent_revoked_at(self, dataset_id: int) -> int:
        return 0

    async def is_servable(self, dataset_id: int) -> bool:
        return True

    async def get_terms(self, dataset_id: int) -> Any:
        return TRAINING_ALLOWED

    async def delivery_context(self, license_id: int) -> delivery.Context:
        return delivery.Context(1, self.deployment.license_manager, license_id)

    async def buyer_key(self, license_id: int) -> bytes:
        raise AssertionError("the agent has the key from the event")

    async def deliver_key(self, releaser: Any, license_id: int, sealed: delivery.Sealed) -> None:
        if self.unreachable_at == license_id:
            self.unreachable_at = None
            raise errors.ChainUnavailable("connection refused")
        p = self._purchase(license_id)
        if p.revert:
            raise errors.revert_class(p.revert)(p.revert, values={})
        point = delivery.encode_point(int(p.key[0]), int(p.key[1]))
        assert delivery.open_sealed(sealed, GOOD_SECRET, await self.delivery_context(license_id)) == DATA_KEY
        assert point == GOOD_KEY
        self.delivered.append(license_id)


HOSTILE_KEYS = st.one_of(
    st.just((GOOD_KEY[:32], GOOD_KEY[32:])).map(lambda xy: (int.from_bytes(xy[0]), int.from_bytes(xy[1]))),
    st.tuples(st.integers(-(2**300), 2**300), st.integers(-(2**300), 2**300)),
    st.sampled_from([_point(0, 0), _point(1, 1), _point(1, 2 + P), _point(P, 2), _point(2**256, 2), _point(1, -2)]),
    st.tuples(st.text(max_size=3), st.none()),
)
PURCHASES = st.lists(
    st.builds(
        Purchase,
        license_id=st.just(0),
        key=HOSTILE_KEYS,
        status=st.sampled_from(list(LicenseStatus)),
        hash_matches=st.booleans(),
        revert=st.sampled_from(["", "", "ConsentIsRevoked", "NotPending", "InvalidDeliveryPoint", "UnknownRevert"]),
    ),
    min_size=1,
    max_size=8,
)


def _agent(chain: FakeChain, home: Path) -> key_agent.KeyAgent:
    store = Keystore.open(home, b"pw") if (home / "keystore.json").exists() else None
    if store is None:
        store = Keystore.create(home, b"pw", account=OWNER)
        store.add_dataset(MANIFEST, DATA_KEY, dataset_id=1)
    return key_agent.KeyAgent(chain, store, home=home)  # type: ignore[arg-type]


def _deliverable(p: Purchase) -> bool:
    return p.key == (int.from_bytes(GOOD_KEY[:32]), int.from_bytes(GOOD_KEY[32:])) and (
        p.status == LicenseStatus.PENDING and p.hash_matches and not p.revert
    )


@pytest.fixture(scope="module")
def owner_store(tmp_path_factory: pytest.TempPathFactory) -> Keystore:
    """The owner's keystore, opened once: the agent only reads it (its state is in its home), and each
    example creating and reopening its own cost two argon2id derivations (most of this test's 14 s in CI)."""
    store = Keystore.create(tmp_path_factory.mktemp("owner"), b"pw", account=OWNER)
    store.add_dataset(MANIFEST, DATA_KEY, dataset_id=1)
    return store


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(purchases=PURCHASES, outage=st.integers(0, 8))
async def test_hostile_purchases_never_stop_the_agent(
    owner_store: Keystore, purchases: list[Purchase], outage: int
) -> None:
    for i, p in enumerate(purchases, start=1):
        p.license_id = i
    chain = FakeChain(purchases, unreachable_at=outage or None)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        agent = key_agent.KeyAgent(chain, owner_store, home=home)  # type: ignore[arg-type]
        for _ in range(2):  # an outage ends a round at that event; the next round resumes there
            with contextlib.suppress(errors.ChainUnavailable):
                await agent.tick()
        decided = agent.decisions
        assert sorted(d.license_id for d in decided) == [p.license_id for p in purchases]  # each decided once
        assert chain.delivered == [p.license_id for p in purchases if _deliverable(p)]
        for d in decided:
            assert d.outcome == ("delivered" if d.license_id in chain.delivered else d.outcome)
            assert d.outcome in {"delivered", "refused", "skipped"}
        again = await key_agent.KeyAgent(chain, owner_store, home=home).tick()  # type: ignore[arg-type]
        assert again == []  # a restart (a new agent on the same home) re-decides nothing


async def test_checkpoint_moves_after_every_event(tmp_path: Path) -> None:
    good = (int.from_bytes(GOOD_KEY[:32]), int.from_bytes(GOOD_KEY[32:]))
    chain = FakeChain([Purchase(1, good), Purchase(2, good), Purchase(3, good)], unreachable_at=3)
    agent = _agent(chain, tmp_path)
    with pytest.raises(errors.ChainUnavailable):
        await agent.tick()
    state = json.loads((tmp_path / key_agent.STATE_FILE).read_text())
    assert (state["next_block"], state["next_log"]) == (2, 1)  # 1 and 2 done, 3 to do
    assert chain.delivered == [1, 2]
    assert [d.license_id for d in await _agent(chain, tmp_path).tick()] == [3]
    assert chain.delivered == [1, 2, 3]


async def test_low_order_or_invalid_keys_are_refused_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = (int.from_bytes(GOOD_KEY[:32]), int.from_bytes(GOOD_KEY[32:]))
    chain = FakeChain([Purchase(1, (0, 0)), Purchase(2, (1, 1)), Purchase(3, ("x", None)), Purchase(4, good)])
    with caplog.at_level(logging.INFO, logger="datasov.agent"):
        decided = {d.license_id: d for d in await _agent(chain, tmp_path).tick()}
    assert [decided[i].outcome for i in (1, 2, 3, 4)] == ["refused", "refused", "refused", "delivered"]
    assert all("key" in decided[i].reason for i in (1, 2, 3))
    assert sum("refused" in r.getMessage() for r in caplog.records) == 3
    assert chain.delivered == [4]


# ------------------------------------------------------------ item 5: the deadline margin ----


async def test_no_delivery_inside_the_safety_margin(chain: Chain, published: Published, tmp_path: Path) -> None:
    store = Keystore.create(tmp_path, b"pw", account=OWNER)
    store.add_dataset(published.manifest.hash(), published.key, dataset_id=published.dataset_id)
    agent = key_agent.KeyAgent(chain, store, home=tmp_path)
    assert 0 < agent.margin <= key_agent.MAX_MARGIN
    lic = await chain.purchase(BUYER, published.dataset_id, Purpose.AI_TRAINING, GOOD_KEY)
    deadline = (await chain.get_license(lic)).delivery_deadline
    await chain.advance_time(deadline - await chain.timestamp() - agent.margin + 1)
    nonce = await chain.w3.eth.get_transaction_count(OWNER.address)
    [decision] = await agent.tick()
    assert (decision.outcome, "deadline" in decision.reason) == ("refused", True)
    assert await chain.w3.eth.get_transaction_count(OWNER.address) == nonce  # nothing sent: no key in any calldata
    assert await chain.delivery(lic) is None
    assert (await chain.get_license(lic)).status == LicenseStatus.PENDING


async def test_agent_delivers_then_claims_after_the_dispute_window(
    chain: Chain, published: Published, tmp_path: Path
) -> None:
    store = Keystore.create(tmp_path, b"pw", account=OWNER)
    store.add_dataset(published.manifest.hash(), published.key, dataset_id=published.dataset_id)
    agent = key_agent.KeyAgent(chain, store, home=tmp_path)
    lic = await chain.purchase(BUYER, published.dataset_id, Purpose.AI_TRAINING, GOOD_KEY)
    assert [d.outcome for d in await agent.tick()] == ["delivered"]
    sealed = await chain.delivery(lic)
    assert sealed is not None
    assert delivery.open_sealed(sealed, GOOD_SECRET, await chain.delivery_context(lic)) == published.key
    before = await chain.balance_of(OWNER.address)
    assert await agent.tick() == []  # window still open: nothing to claim
    await chain.advance_time(chain.deployment.dispute_window + 1)
    restarted = key_agent.KeyAgent(chain, store, home=tmp_path)  # the claim survives a restart
    assert [(d.license_id, d.outcome) for d in await restarted.tick()] == [(lic, "claimed")]
    assert await chain.balance_of(OWNER.address) > before
    assert (await chain.get_license(lic)).paid
