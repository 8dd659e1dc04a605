"""An embedded chain shared by the market tests, reverted to a snapshot after each test."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from contracts import errors
from contracts.chain import Chain
from contracts.connection import ETHER, TOKEN
from contracts.devchain import DevChain, dev_account
from contracts.terms import TRAINING_ALLOWED, LicenseTerms
from erasure import envelope, merkle, pipeline
from erasure.manifest import Manifest
from tests.support.hardhat import HardhatNode

DEPLOYER, OWNER, BUYER, AGENT, STRANGER = (dev_account(i) for i in range(5))
OPERATORS = [dev_account(i) for i in range(5, 12)]
PRICE = 5 * TOKEN
STAKE = 100 * TOKEN


# A test that runs on one of the chains only (a property test with its own example count on each:
# on Hardhat it checks that a real node over JSON-RPC agrees, which needs fewer examples than the model):
# ``@ON_EMBEDDED`` / ``@ON_HARDHAT`` above its other decorators.
ON_EMBEDDED = pytest.mark.parametrize("chain_kind", ["embedded"], indirect=True)
ON_HARDHAT = pytest.mark.parametrize(
    "chain_kind", [pytest.param("hardhat", marks=pytest.mark.integration)], indirect=True
)


@pytest_asyncio.fixture(scope="session")
async def embedded_chain() -> AsyncIterator[Chain]:
    """One embedded EVM for the worker's whole session (each file and test reverts what it did)."""
    yield await DevChain.embedded(dev_accounts=12)


@pytest_asyncio.fixture(scope="session")
async def hardhat_chain() -> AsyncIterator[Chain]:
    """One Hardhat node for the worker's whole session, deployed and funded once."""
    node = HardhatNode()
    try:
        w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(node.url))
        await w3.provider.make_request("hardhat_setBalance", [DEPLOYER.address, hex(1000 * ETHER)])  # type: ignore[arg-type]
        await w3.provider.disconnect()
        chain = await DevChain.deploy(node.url, DEPLOYER)
        await chain.fund_dev_accounts(12)
        yield chain
        await chain.close()
    finally:
        node.stop()


@pytest.fixture(scope="module", params=["embedded", pytest.param("hardhat", marks=pytest.mark.integration)])
def chain_kind(request: pytest.FixtureRequest) -> Chain:
    """The session's chain of the kind a test is parametrized with (``base_chain`` below)."""
    chain: Chain = request.getfixturevalue(f"{request.param}_chain")
    return chain


@pytest_asyncio.fixture(scope="module")
async def base_chain(chain_kind: Chain) -> AsyncIterator[Chain]:
    """The same suite runs on the embedded EVM and on a real Hardhat node over JSON-RPC.

    The chains themselves live for the session (a parametrized session fixture keeps one value at
    a time, so every file used to start Hardhat and deploy the embedded chain again); a file gets
    the chain as the previous file left it, which is as it was deployed: each test's ``chain`` and
    each module fixture revert what they did, and the file's own snapshot here makes sure of it."""
    snapshot = await chain_kind.snapshot()
    yield chain_kind
    await chain_kind.revert(snapshot)


@pytest_asyncio.fixture
async def chain(base_chain: Chain) -> AsyncIterator[Chain]:
    snapshot = await base_chain.snapshot()
    yield base_chain
    await base_chain.revert(snapshot)


@dataclass
class Published:
    """A small real dataset: encoded shares, manifest, key, and its on-chain id."""

    dataset_id: int
    manifest: Manifest = field(repr=False)  # large: keep hypothesis' and pytest's reports readable
    shares: list[bytes] = field(repr=False)
    key: bytes = field(repr=False)  # and never print a data key
    trees: list[merkle.MerkleTree] = field(repr=False)


def encode_sample(size: int = 20_000, k: int = 2, n: int = 5) -> tuple[Manifest, list[bytes], bytes]:
    key = envelope.new_data_key()
    sinks = [io.BytesIO() for _ in range(n)]
    layout = pipeline.Layout(k=k, n=n, block_size=4096, leaf_size=1024)
    result = pipeline.encode([os.urandom(size)], sinks, key=key, layout=layout)
    return result.manifest, [s.getvalue() for s in sinks], key


async def register(
    chain: Chain, man: Manifest, *, owner: LocalAccount = OWNER, terms: LicenseTerms = TRAINING_ALLOWED, **kw: object
) -> int:
    return await chain.register_dataset(
        owner,
        manifest_hash=man.hash(),
        commitment_root=man.commitment_root,
        key_commitment=man.key_commitment,
        key_salt=man.salt,
        plaintext_size=man.plaintext_size,
        share_size=man.share_size,
        leaf_size=man.leaf_size,
        k=man.k,
        n=man.n,
        price=kw.pop("price", PRICE),  # type: ignore[arg-type]
        terms=terms,
        **kw,  # type: ignore[arg-type]
    )


@pytest_asyncio.fixture
async def published(chain: Chain) -> Published:
    man, shares, key = encode_sample()
    dataset_id = await register(chain, man)
    trees = [merkle.MerkleTree(s, man.leaf_size) for s in shares]
    return Published(dataset_id, man, shares, key, trees)


async def make_servable(chain: Chain, dataset_id: int, n: int, *, owner: LocalAccount = OWNER) -> int:
    """Open a deal for the dataset with every share accepted (purchases need a servable dataset);
    returns the deal id. Operators are registered on first use."""
    for op in OPERATORS[:n]:
        with contextlib.suppress(errors.AlreadyRegistered):
            await chain.register_operator(op, STAKE)
    providers = [op.address for op in OPERATORS[:n]]
    deal = await chain.open_deal(owner, dataset_id, providers, epochs=50, fee_per_share_epoch=0)
    for i in range(n):
        await chain.accept_share(OPERATORS[i], deal, i)
    return deal


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running on a thread of its own, for code that is called from worker threads
    (the share sources of a decode)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
