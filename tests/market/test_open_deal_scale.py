"""openDeal at the largest layout (n = 256): the duplicate check is linear and fits a transaction."""

from __future__ import annotations

import os

import pytest

from contracts import errors
from contracts.chain import ChainConfig
from contracts.connection import ETHER
from contracts.devchain import DevChain, dev_account
from contracts.terms import TRAINING_ALLOWED

N = 256
TX_GAS_CAP = 1 << 24  # EIP-7825's per-transaction cap (16,777,216)


@pytest.mark.slow
async def test_open_deal_with_256_providers_fits_a_transaction() -> None:
    # zero minimum stake: registering 256 operators needs no token transfers (slashing is not tested here)
    chain = await DevChain.embedded(dev_accounts=2, config=ChainConfig(min_stake=0, slash_amount=0))
    owner = dev_account(1)
    operators = [dev_account(1000 + i) for i in range(N)]
    tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    funder = tester.get_accounts()[0]
    register = chain.storage_market.functions.registerOperator(0)._encode_transaction_data()
    for op in operators:  # straight to the tester: no gas estimate, no receipt polling (fast)
        tester.add_account(op.key.hex())
        tester.send_transaction({"from": funder, "to": op.address, "value": ETHER // 10, "gas": 21_000})
        tester.send_transaction(
            {"from": op.address, "to": chain.deployment.storage_market, "data": register, "gas": 100_000}
        )
    assert (await chain.get_operator(operators[-1].address)).registered
    dataset = await chain.register_dataset(
        owner,
        manifest_hash=os.urandom(32),
        commitment_root=os.urandom(32),
        key_commitment=os.urandom(32),
        plaintext_size=1 << 20,
        share_size=1 << 12,
        leaf_size=1 << 10,
        k=128,
        n=N,
        price=0,
        terms=TRAINING_ALLOWED,
    )
    providers = [op.address for op in operators]
    with pytest.raises(errors.DuplicateProvider):  # the last one repeats the first
        await chain.open_deal(owner, dataset, [*providers[:-1], providers[0]], epochs=2, fee_per_share_epoch=0)
    fn = chain.storage_market.functions.openDeal(dataset, providers, 2, 0)
    receipt = await chain.send(fn, owner)
    assert int(receipt["gasUsed"]) < TX_GAS_CAP // 2
    deal = int(chain.tx.event(chain.storage_market, "DealOpened", receipt)["args"]["dealId"])
    assert (await chain.get_share(deal, N - 1)).provider == providers[-1]
