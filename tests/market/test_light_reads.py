"""The reader (``Chain.reader``: raw JSON-RPC, no web3) answers every read as the web3 connection does.

The same wrapper methods run over both backends (:mod:`contracts.rpc` implements the part of web3's
contract interface they use), against the embedded chain served over JSON-RPC as ``datasov devnet up``
serves it: results, decoded logs and named reverts must be equal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from eth_utils.crypto import keccak
from web3.middleware import Web3Middleware
from web3.types import RPCEndpoint, RPCResponse

from contracts import delivery, errors, rpc, tx
from contracts.chain import Chain
from contracts.terms import Purpose
from datasov.rpc import serve
from market.health import dataset_health

from .conftest import BUYER, OPERATORS, OWNER, Published, make_servable

LAB = delivery.new_secret()


@pytest_asyncio.fixture
async def reader(chain: Chain) -> AsyncIterator[Chain]:
    if chain.kind != "embedded":
        pytest.skip("the reader is checked against the embedded chain served over JSON-RPC")
    runner, url = await serve(chain, "127.0.0.1", 0)
    light = await Chain.reader(url, chain.deployment)
    try:
        yield light
    finally:
        await light.close()
        await runner.cleanup()


async def same(full: Chain, light: Chain, read: Callable[[Chain], Awaitable[Any]]) -> Any:
    want = await read(full)
    got = await read(light)
    assert got == want
    assert type(got) is type(want)
    return got


async def sample(chain: Chain, published: Published) -> tuple[int, int, int]:
    """A servable deal and a license with its key delivered: (deal, license, head)."""
    ds = published.dataset_id
    deal = await make_servable(chain, ds, published.manifest.n)
    lic = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, delivery.public_key(LAB))
    sealed = delivery.seal(published.key, delivery.public_key(LAB), await chain.delivery_context(lic))
    await chain.deliver_key(OWNER, lic, sealed)
    await chain.mine(2)
    return deal, lic, await chain.block_number()


def reads(published: Published, deal: int, lic: int, head: int) -> list[Callable[[Chain], Awaitable[Any]]]:
    """Every kind of read the wrappers make (structs, arrays, addresses, bytes, several outputs, logs)."""
    ds = published.dataset_id
    return [
        lambda c: c.dataset_count(),
        lambda c: c.get_dataset(ds),
        lambda c: c.get_terms(ds),
        lambda c: c.consent_revoked_at(ds),
        lambda c: c.dataset_by_manifest(OWNER.address, published.manifest.hash()),
        lambda c: c.balance_of(OWNER.address),
        lambda c: c.eth_balance(BUYER.address),
        lambda c: c.storage_balance(OPERATORS[0].address),
        lambda c: c.get_operator(OPERATORS[0].address),
        lambda c: c.deals_of(dataset_id=ds),
        lambda c: c.deals_of(owner=OWNER.address),
        lambda c: c.get_deal(deal),
        lambda c: c.get_share(deal, 1),
        lambda c: c.get_shares(deal),
        lambda c: c.order_view(deal, 1),
        lambda c: c.deals_of_datasets([ds, ds + 1]),
        lambda c: c.terminated_deals([deal]),
        lambda c: c.datasets_of(OWNER.address),
        lambda c: c.healthy_shares(deal),
        lambda c: c.is_servable(ds),
        lambda c: c.current_epoch(),
        lambda c: c.get_license(lic),
        lambda c: c.is_license_valid(lic),
        lambda c: c.buyer_key(lic),
        lambda c: c.delivery(lic),
        lambda c: c.purchases(0, head),
        lambda c: c.license_events(lic),
        lambda c: c.announced(),
        lambda c: c.min_stake(),
        lambda c: c.block_number(),
        lambda c: c.timestamp(),
        lambda c: dataset_health(c, ds, k=published.manifest.k, n=published.manifest.n),
    ]


async def test_reads_agree_with_web3(chain: Chain, reader: Chain, published: Published) -> None:
    deal, lic, head = await sample(chain, published)
    assert reader.kind == "reader"
    for read in reads(published, deal, lic, head):
        await same(chain, reader, read)
    assert (await reader.get_block(head))["hash"] == bytes((await chain.w3.eth.get_block(head))["hash"])


async def test_calls_encoded_here_agree_with_web3s_own(
    chain: Chain, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A web3 connection's reads are encoded and decoded by ``contracts.rpc`` (``Transactor.call``):
    every read, and every named refusal, equals what web3's own ``fn.call()`` gives."""
    deal, lic, head = await sample(chain, published)
    for read in reads(published, deal, lic, head):
        ours = await read(chain)
        with monkeypatch.context() as patched:
            patched.setattr(tx, "encodable", lambda fn: False)
            theirs = await read(chain)
        assert ours == theirs
        assert type(ours) is type(theirs)
    refusals = []
    for encoded_here in (True, False):
        with monkeypatch.context() as patched:
            if not encoded_here:
                patched.setattr(tx, "encodable", lambda fn: False)
            with pytest.raises(errors.ContractRevert) as caught:
                await chain.get_deal(999)
            refusals.append((type(caught.value), caught.value.values, caught.value.function))
    assert refusals[0] == refusals[1]


def test_a_call_is_encoded_with_its_selector_computed_once() -> None:
    """web3 hashed every function signature of the contract on each call; here one per signature, once."""
    import contracts

    abi = next(i for i in contracts.load("StorageMarket").abi if i.get("name") == "orderView")
    rpc._selector.cache_clear()
    first = rpc.calldata(abi, (7, 1))
    assert rpc.calldata(abi, (7, 1)) == first
    assert rpc._selector.cache_info().misses == 1
    assert first[:4] == keccak(text="orderView(uint256,uint16)")[:4]


async def test_refusals_are_the_same_named_errors(chain: Chain, reader: Chain, published: Published) -> None:
    for c in (chain, reader):
        with pytest.raises(errors.ContractRevert) as caught:
            await c.get_license(999)
        assert caught.value.error_name
        assert caught.value.function == "getLicense"
    kinds = []
    for c in (chain, reader):
        with pytest.raises(errors.ContractRevert) as caught:
            await c.get_deal(999)
        kinds.append((type(caught.value), caught.value.values))
    assert kinds[0] == kinds[1]


async def test_a_reader_refuses_to_send_and_changes_nothing(chain: Chain, reader: Chain, published: Published) -> None:
    before = await chain.balance_of(OWNER.address)
    with pytest.raises(errors.ReadOnlyConnection):
        await reader.mint(OWNER, OWNER.address, 1)
    assert await chain.balance_of(OWNER.address) == before


async def test_a_reader_of_the_wrong_chain_or_no_chain_fails_clearly(chain: Chain, reader: Chain) -> None:
    url = reader._transport.url  # type: ignore[union-attr]
    with pytest.raises(errors.DeploymentError):
        await Chain.reader(url, replace(chain.deployment, chain_id=chain.deployment.chain_id + 1))
    with pytest.raises(errors.ChainUnavailable):
        await Chain.reader("http://127.0.0.1:9", chain.deployment)
    with pytest.raises(errors.DeploymentError):
        await Chain.reader(url, replace(chain.deployment, registry="0x" + "11" * 20))


def test_bn254_constants_are_py_eccs() -> None:
    """contracts.delivery spells out BN254's prime and order so that reads do not import py_ecc."""
    from py_ecc.fields.field_properties import field_properties
    from py_ecc.optimized_bn128.optimized_curve import curve_order

    assert field_properties["bn128"]["field_modulus"] == delivery.P
    assert curve_order == delivery.N


async def test_a_read_over_json_rpc_is_one_request(chain: Chain, published: Published) -> None:
    """A web3 connection asks the node only what a read needs (web3's validation middleware asked
    for the chain id before every call: two round trips per read to a remote node)."""
    if chain.kind != "embedded":
        pytest.skip("counted against the embedded chain served over JSON-RPC")
    runner, url = await serve(chain, "127.0.0.1", 0)
    remote = await Chain.connect(url, chain.deployment)
    asked: list[str] = []

    class Count(Web3Middleware):
        async def async_wrap_make_request(self, make_request: Any) -> Any:
            async def middleware(method: RPCEndpoint, params: Any) -> RPCResponse:
                asked.append(str(method))
                response: RPCResponse = await make_request(method, params)
                return response

            return middleware

    try:
        remote.w3.middleware_onion.add(Count)
        assert await remote.get_dataset(published.dataset_id) == await chain.get_dataset(published.dataset_id)
        assert asked == ["eth_call"]
    finally:
        await remote.close()
        await runner.cleanup()
