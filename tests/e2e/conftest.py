"""The in-process network every end-to-end test shares: an embedded chain and 12 staked nodes.

Tests publish their own datasets (a second or so each) so they never depend on each other; provers
are not running in the background here (tests that need proofs drive them with ``prove_all``).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from contracts.chain import ChainConfig
from contracts.connection import TOKEN
from contracts.devchain import dev_account
from contracts.terms import TRAINING_ALLOWED, LicenseTerms
from datasov.devnet import LocalNetwork
from erasure.pipeline import Layout
from market import key_agent, publisher
from market.keystore import Keystore
from storage_node.client import NodeClient

SAMPLE = Path(__file__).parents[2] / "datasov" / "samples" / "tiny-corpus"
PRICE = 5 * TOKEN
LAYOUT = Layout(k=4, n=10)
_homes = itertools.count()


@pytest_asyncio.fixture(scope="session")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalNetwork]:
    network = await LocalNetwork.start(
        tmp_path_factory.mktemp("e2e-net"), nodes=12, config=ChainConfig(epoch_blocks=50), provers=False
    )
    yield network
    await network.stop()


@pytest_asyncio.fixture(scope="session")
async def client() -> AsyncIterator[NodeClient]:
    async with NodeClient(timeout=10, retries=2) as c:
        yield c


def keystore(tmp_path_factory: pytest.TempPathFactory, account_index: int) -> Keystore:
    home = tmp_path_factory.mktemp(f"home-{next(_homes)}")
    return Keystore.create(home, b"test passphrase", account=dev_account(account_index))


@pytest.fixture(scope="session")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Keystore:
    return keystore(tmp_path_factory, 1)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Keystore:
    return keystore(tmp_path_factory, 2)


@dataclass
class Offer:
    pub: publisher.Published
    agent: key_agent.KeyAgent

    @property
    def dataset_id(self) -> int:
        return self.pub.dataset_id


Publish = Callable[..., Awaitable[Offer]]


async def accept_placements(net: LocalNetwork, pub: publisher.Published) -> None:
    """Each holder accepts its share on-chain (a prover's first step): the dataset becomes servable."""
    for index, info in pub.placements.items():
        await net.chain.accept_share(net.node_of(info.address).node.operator, pub.deal_id, index)


@pytest.fixture
def publish(net: LocalNetwork, owner: Keystore, client: NodeClient, tmp_path: Path) -> Publish:
    """Publish ``path`` (the sample by default) as the owner; returns it with the owner's key agent."""

    async def go(path: Path = SAMPLE, *, terms: LicenseTerms = TRAINING_ALLOWED, layout: Layout = LAYOUT) -> Offer:
        pub = await publisher.publish(
            path,
            chain=net.chain,
            keystore=owner,
            directory=net.directory,
            client=client,
            staging=tmp_path / "staging",
            options=publisher.PublishOptions(layout=layout, price=PRICE, terms=terms, epochs=40),
        )
        await accept_placements(net, pub)  # no provers run here: accept as they would, so it can be sold
        return Offer(pub, key_agent.KeyAgent(net.chain, owner, home=owner.path.parent))

    return go
