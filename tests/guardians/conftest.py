"""A servable dataset whose key is shared 3-of-5 among staked operators acting as guardians."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest_asyncio
from eth_account.signers.local import LocalAccount
from nacl.public import PrivateKey

from contracts.chain import Chain
from contracts.devchain import DevChain
from market import guardians
from market.guardian_agent import GuardianAgent
from market.keystore import Keystore
from tests.market.conftest import BUYER, OPERATORS, OWNER, PRICE, Published, encode_sample, make_servable, register

__all__ = ["BUYER", "OPERATORS", "OWNER", "PRICE"]

M, T = 5, 3


def guardian_secret(account: LocalAccount) -> PrivateKey:
    return PrivateKey(hashlib.sha256(b"test guardian " + bytes(account.key)).digest())


@pytest_asyncio.fixture(scope="session")
async def base_chain() -> AsyncIterator[DevChain]:
    yield await DevChain.embedded(dev_accounts=12)


@dataclass
class Guarded:
    chain: DevChain
    published: Published
    epoch: int
    guardians: list[LocalAccount]
    agents: list[GuardianAgent] = field(repr=False)
    buyer: Keystore = field(repr=False)

    @property
    def dataset_id(self) -> int:
        return self.published.dataset_id


async def announce(chain: Chain, accounts: list[LocalAccount]) -> None:
    for op in accounts:
        await chain.register_guardian_key(op, bytes(guardian_secret(op).public_key))


@dataclass
class World:
    """The shared chain state every test starts from (reverted to after each)."""

    snapshot: object
    published: Published = field(repr=False)
    epoch: int


@pytest_asyncio.fixture(scope="session")
async def world(base_chain: DevChain) -> World:
    man, shares, key = encode_sample()
    dataset_id = await register(base_chain, man)
    await make_servable(base_chain, dataset_id, man.n)  # registers OPERATORS[:n] with stake
    members = OPERATORS[:M]
    await announce(base_chain, members)
    epoch = await guardians.share_key(base_chain, OWNER, dataset_id, key, [g.address for g in members], T, fee_bps=500)
    return World(await base_chain.snapshot(), Published(dataset_id, man, shares, key, []), epoch)


@pytest_asyncio.fixture
async def chain(base_chain: DevChain, world: World) -> AsyncIterator[DevChain]:
    await base_chain.revert(world.snapshot)
    yield base_chain
    await base_chain.revert(world.snapshot)


@pytest_asyncio.fixture
async def guarded(chain: DevChain, world: World, tmp_path: Path) -> Guarded:
    members = OPERATORS[:M]
    agents = []
    for i, g in enumerate(members):
        home = tmp_path / f"guardian{i}"
        home.mkdir()
        agents.append(GuardianAgent(chain, g, guardian_secret(g), home=home, poll=0.05))
    (tmp_path / "lab").mkdir()
    buyer = Keystore.create(tmp_path / "lab", b"pw", account=BUYER)
    return Guarded(chain, world.published, world.epoch, members, agents, buyer)
