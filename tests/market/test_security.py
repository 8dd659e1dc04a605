"""Security properties: reentrancy through a malicious token, vectors shared with Python, error
coverage, and value conservation under random sequences of actions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contracts
from contracts import delivery, errors
from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.models import LicenseStatus
from contracts.terms import Purpose
from erasure import merkle
from tests.vectors.generate import seeded

from .conftest import (
    BUYER,
    DEPLOYER,
    ON_EMBEDDED,
    ON_HARDHAT,
    OPERATORS,
    OWNER,
    PRICE,
    STAKE,
    STRANGER,
    Published,
    encode_sample,
    make_servable,
    register,
)
from .test_storage_market import FEE, open_deal, proof_for

LAB_SECRET = delivery.new_secret()
LAB_PUB = delivery.public_key(LAB_SECRET)
VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "merkle_v1.json").read_text())


async def test_every_custom_error_has_a_named_python_class() -> None:
    for name in contracts.ARTIFACTS:
        for item in contracts.load(name).abi:
            if item["type"] == "error":
                assert item["name"] in errors.REVERTS, f"{name}.{item['name']} has no class in contracts.errors"


async def test_committed_merkle_vectors_verify_on_chain(chain: Chain) -> None:
    harness = chain.w3.eth.contract(
        address=await chain.tx.create("MerkleHarness", DEPLOYER), abi=contracts.load("MerkleHarness").abi
    )
    for case in VECTORS["cases"]:
        root = bytes.fromhex(case["root"])
        for p in case["proofs"]:
            leaf = bytes.fromhex(p["leaf_hex"])
            siblings = [bytes.fromhex(s) for s in p["siblings"]]
            assert await harness.functions.verify(root, leaf, p["index"], case["leaf_count"], siblings).call()
            wrong = bytes([leaf[0] ^ 1]) + leaf[1:] if leaf else b"\x01"
            assert not await harness.functions.verify(root, wrong, p["index"], case["leaf_count"], siblings).call()
            if siblings:
                assert not await harness.functions.verify(
                    root, leaf, p["index"], case["leaf_count"], siblings[:-1]
                ).call()
        data = seeded(case["seed"], case["size"])
        first = data[: case["leaf_size"]]
        assert await harness.functions.leafHash(first).call() == hashlib.sha256(b"\x00" + first).digest()


async def _malicious_dataset(chain: Chain) -> tuple[str, int, bytes]:
    bad = await chain.tx.create("ReentrantToken", DEPLOYER)
    token = chain.w3.eth.contract(address=bad, abi=contracts.load("ReentrantToken").abi)
    await chain.send(token.functions.mint(BUYER.address, 100 * TOKEN), DEPLOYER)
    man, _, key = encode_sample()
    ds = await register(chain, man, payment_token=bad)
    await make_servable(chain, ds, man.n)
    return bad, ds, key


async def test_refund_cannot_be_reentered(chain: Chain) -> None:
    bad, ds, _ = await _malicious_dataset(chain)
    token = chain.w3.eth.contract(address=bad, abi=contracts.load("ReentrantToken").abi)
    lic = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, LAB_PUB)
    payload = chain.licenses.encode_abi("refund", args=[lic])
    await chain.send(token.functions.arm(chain.deployment.license_manager, payload), STRANGER)
    await chain.advance_time(chain.deployment.delivery_window + 1)
    await chain.refund(BUYER, lic)
    assert await token.functions.reentered().call()
    assert not await token.functions.reentrySucceeded().call()
    assert await token.functions.balanceOf(BUYER.address).call() == 100 * TOKEN  # paid back once
    assert await token.functions.balanceOf(chain.deployment.license_manager).call() == 0


async def test_delivery_cannot_be_reentered_into_a_refund(chain: Chain) -> None:
    bad, ds, key = await _malicious_dataset(chain)
    token = chain.w3.eth.contract(address=bad, abi=contracts.load("ReentrantToken").abi)
    lic = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, LAB_PUB)
    await chain.send(
        token.functions.arm(chain.deployment.license_manager, chain.licenses.encode_abi("refund", args=[lic])),
        STRANGER,
    )
    await chain.deliver_key(OWNER, lic, delivery.seal(key, LAB_PUB, await chain.delivery_context(lic)))
    await chain.advance_time(chain.deployment.dispute_window + 1)
    await chain.claim_payment(OWNER, lic)
    assert await token.functions.reentered().call()
    assert not await token.functions.reentrySucceeded().call()
    assert (await chain.get_license(lic)).status == LicenseStatus.DELIVERED
    assert await token.functions.balanceOf(OWNER.address).call() == PRICE


# ------------------------------------------------------------------ value conservation ----

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "purchase",
                "deliver",
                "dispute",
                "claim_payment",
                "refund",
                "revoke",
                "time",
                "prove",
                "report",
                "epoch",
                "terminate",
                "settle",
                "claim",
                "withdraw",
            ]
        ),
        st.integers(0, 7),
    ),
    min_size=4,
    max_size=14,
)


async def _check_invariants(chain: Chain, licenses: list[int], deals: list[int], accounts: list[str]) -> None:
    pending = 0
    for lic in licenses:
        record = await chain.get_license(lic)
        if record.status == LicenseStatus.PENDING or (record.status == LicenseStatus.DELIVERED and not record.paid):
            pending += record.price  # escrowed until refunded, or claimed after the dispute window
    assert await chain.balance_of(chain.deployment.license_manager) == pending
    held = 0
    for op in OPERATORS:
        held += (await chain.get_operator(op.address)).stake
    for acct in accounts:
        held += await chain.storage_balance(acct)
    held += int(await chain.call(chain.storage_market.functions.burned()))
    for deal_id in deals:
        deal = await chain.get_deal(deal_id)
        assert deal.paid <= deal.escrow
        if not deal.settled:
            held += deal.escrow - deal.paid
    assert await chain.balance_of(chain.deployment.storage_market) == held


async def _chain_state(chain: Chain) -> tuple[int, bytes]:
    """The latest block's number and state root: any transaction, even one that reverts after being
    mined (it pays gas), changes them."""
    block = await chain.w3.eth.get_block("latest")
    return block["number"], bytes(block["stateRoot"])


async def _approval_or_reverted(chain: Chain, number: int) -> bool:
    """Block ``number`` holds one transaction: an ERC-20 ``approve`` (the chain client approves the
    price before it sends a purchase, and the approval stays when the purchase is refused), or one
    that reverted (it paid gas and changed no contract state)."""
    block = await chain.w3.eth.get_block(number, full_transactions=True)
    txs = list(block["transactions"])
    if len(txs) != 1:
        return False
    receipt = await chain.w3.eth.get_transaction_receipt(txs[0]["hash"])  # type: ignore[index]
    if receipt["status"] == 0:
        return True
    data = txs[0].get("input", txs[0].get("data", b""))  # type: ignore[union-attr]  # Hardhat / eth-tester
    raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
    return raw[:4] == keccak(text="approve(address,uint256)")[:4]


@dataclass
class Market:
    chain: Chain
    pub: Published
    deal: int
    ready: Any  # snapshot with the dataset registered and the deal open


@pytest_asyncio.fixture
async def market(base_chain: Chain) -> AsyncIterator[Market]:
    """A dataset with an accepted deal, set up once for all examples of a property test."""
    before = await base_chain.snapshot()
    man, shares, key = encode_sample()
    ds = await register(base_chain, man)
    pub = Published(ds, man, shares, key, [merkle.MerkleTree(s, man.leaf_size) for s in shares])
    deal = await open_deal(base_chain, pub)
    yield Market(base_chain, pub, deal, await base_chain.snapshot())
    await base_chain.revert(before)


PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@ON_EMBEDDED
@settings(PROPERTY, max_examples=15)
@given(actions=ACTIONS)
async def test_value_is_conserved(market: Market, actions: list[tuple[str, int]]) -> None:
    await value_is_conserved(market, actions)


@ON_HARDHAT  # the same property where mining on arrival and gas estimates differ: fewer examples (15 took 23 s in CI)
@settings(PROPERTY, max_examples=5)
@given(actions=ACTIONS)
async def test_value_is_conserved_on_hardhat(market: Market, actions: list[tuple[str, int]]) -> None:
    await value_is_conserved(market, actions)


async def value_is_conserved(market: Market, actions: list[tuple[str, int]]) -> None:
    chain, pub, deal = market.chain, market.pub, market.deal
    man, ds, key = pub.manifest, pub.dataset_id, pub.key
    licenses: list[int] = []
    accounts = [OWNER.address, STRANGER.address, BUYER.address] + [op.address for op in OPERATORS]
    state = await _chain_state(chain)
    try:
        for action, arg in actions:
            refusal: errors.ContractRevert | None = None
            try:
                if action == "purchase":
                    licenses.append(await chain.purchase(BUYER, ds, Purpose(arg % 4), LAB_PUB))
                elif action == "deliver" and licenses:
                    lic = licenses[arg % len(licenses)]
                    right = key if arg % 2 else bytes(32)  # an honest or a wrong key
                    sealed = delivery.seal(right, LAB_PUB, await chain.delivery_context(lic))
                    await chain.deliver_key(OWNER, lic, sealed)
                elif action == "dispute" and licenses:
                    lic = licenses[arg % len(licenses)]
                    sealed = await chain.delivery(lic)
                    if sealed is not None:
                        await chain.dispute(BUYER, lic, LAB_SECRET, sealed)
                elif action == "claim_payment" and licenses:
                    await chain.claim_payment(STRANGER, licenses[arg % len(licenses)])
                elif action == "refund" and licenses:
                    await chain.refund(BUYER, licenses[arg % len(licenses)])
                elif action == "revoke":
                    await chain.revoke_consent(OWNER, ds)
                elif action == "time":
                    await chain.advance_time(chain.deployment.delivery_window // 2 + arg)
                elif action == "prove":
                    share = arg % man.n
                    epoch = await chain.current_epoch()
                    await chain.prove_storage(OPERATORS[share], await proof_for(chain, pub, deal, share, epoch))
                elif action == "report":
                    epoch = await chain.current_epoch()
                    await chain.report_missed_proof(STRANGER, deal, arg % man.n, max(0, epoch - 1))
                elif action == "epoch":
                    await chain.advance_to_epoch(await chain.current_epoch() + 1)
                elif action == "terminate":
                    await chain.terminate_deal(OWNER, deal)
                elif action == "settle":
                    await chain.settle_deal(STRANGER, deal)
                elif action == "claim":
                    await chain.claim_fees(STRANGER, deal, arg % man.n)
                elif action == "withdraw":
                    await chain.withdraw([OWNER, STRANGER, *OPERATORS][arg % 9])
            except errors.ContractRevert as err:
                refusal = err
            after = await _chain_state(chain)
            if refusal is not None:  # refusals are part of the sequence: each is named, and changes nothing
                assert type(refusal).__name__ in errors.REVERTS, f"{action}: unnamed revert {refusal!r}"
                if after[0] > state[0]:
                    # known: the approval before a purchase is mined; and a node that mines on arrival
                    # (Hardhat) mines a transaction whose estimate passed but which reverted in its block
                    mined = range(state[0] + 1, after[0] + 1)
                    assert all([await _approval_or_reverted(chain, n) for n in mined]), (
                        f"{action} mined more: {refusal}"
                    )
                else:
                    assert after == state, f"{action} was refused ({refusal}) yet changed the chain"
            if after != state:  # the same state root is the same state: the invariants held for it
                await _check_invariants(chain, licenses, [deal], accounts)
            state = after
    finally:
        await chain.revert(market.ready)
        market.ready = await chain.snapshot()  # a Hardhat snapshot is used up by reverting to it


async def test_stake_and_fee_accounting_example(chain: Chain, published: Published) -> None:
    deal = await open_deal(chain, published)
    d = await chain.get_deal(deal)
    assert d.escrow == published.manifest.n * 5 * FEE
    assert await chain.balance_of(chain.deployment.storage_market) == len(OPERATORS) * STAKE + d.escrow


PINNED_SOLC = json.loads((Path(contracts.__file__).parent / "package.json").read_text())["devDependencies"]["solc"]


@pytest.mark.parametrize("name", ["TestToken", "DatasetRegistry", "LicenseManager", "StorageMarket", "KeyGuardians"])
async def test_artifacts_are_compiled_from_their_abi(name: str) -> None:
    """The bytecode is real EVM code that dispatches every function of the ABI, built by the pinned solc."""
    art = contracts.load(name)
    code = bytes.fromhex(art.bytecode.removeprefix("0x"))  # raises on anything that is not hex
    functions = [item for item in art.abi if item["type"] == "function"]
    assert functions
    for item in functions:
        signature = f"{item['name']}({','.join(_abi_type(i) for i in item['inputs'])})"
        selector = keccak(text=signature)[:4]
        assert b"\x63" + selector in code, f"{name}.{signature} is in the ABI but not dispatched by the bytecode"
    assert art.compiler.split("+")[0] == PINNED_SOLC
    version = bytes(int(part) for part in PINNED_SOLC.split("."))
    assert code.endswith(b"dsolcC" + version + b"\x00\x33"), "no metadata trailer of the pinned solc"


def _abi_type(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        return f"({','.join(_abi_type(c) for c in param['components'])}){kind[len('tuple') :]}"
    return kind
