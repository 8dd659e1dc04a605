"""Gas of opening a deal each way, n = 10, on the embedded EVM: register + openDeal (root known
first), openDraftDeal + register + commitDeal (root known last, three transactions) and openDraftDeal
+ registerAndCommit (the streaming publish now: two transactions).

    python -m bench.gas_deals [--json]

Ratios printed: each streaming path's total over the staged path's (the price of knowing the root last).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from contracts.connection import TOKEN
from contracts.devchain import DevChain, dev_account
from contracts.terms import TRAINING_ALLOWED

from .gas import PROVIDERS


async def run() -> dict[str, int]:
    chain = await DevChain.embedded(dev_accounts=16)
    owner = dev_account(1)
    for p in PROVIDERS:
        await chain.register_operator(p, 100 * TOKEN)
    await chain.approve(owner, chain.deployment.storage_market, 10**24)
    share_size, leaf_size, providers = 1 << 26, 1024, [p.address for p in PROVIDERS]

    def registration() -> tuple[object, ...]:
        hashes = (os.urandom(32), os.urandom(32), os.urandom(32), os.urandom(32), 1 << 28, share_size)
        return (*hashes, leaf_size, 3, 10, 5 * TOKEN, chain.deployment.token, "0x" + "00" * 20)

    async def register() -> tuple[int, int]:
        fn = chain.registry.functions.register(registration(), TRAINING_ALLOWED.to_abi())
        receipt = await chain.send(fn, owner)
        return int(chain.tx.event(chain.registry, "DatasetRegistered", receipt)["args"]["datasetId"]), int(
            receipt["gasUsed"]
        )

    out: dict[str, int] = {}
    ds, out["register"] = await register()
    receipt = await chain.send(chain.storage_market.functions.openDeal(ds, providers, 10, TOKEN // 100), owner)
    out["open_deal"] = int(receipt["gasUsed"])
    fn = chain.storage_market.functions.openDraftDeal(share_size, leaf_size, 3, providers, 10, TOKEN // 100)
    receipt = await chain.send(fn, owner)
    out["open_draft_deal"] = int(receipt["gasUsed"])
    draft = int(chain.tx.event(chain.storage_market, "DealDrafted", receipt)["args"]["dealId"])
    ds2, out["register_2"] = await register()
    receipt = await chain.send(chain.storage_market.functions.commitDeal(draft, ds2), owner)
    out["commit_deal"] = int(receipt["gasUsed"])
    receipt = await chain.send(fn, owner)  # a second draft, committed by registerAndCommit
    draft = int(chain.tx.event(chain.storage_market, "DealDrafted", receipt)["args"]["dealId"])
    fn = chain.storage_market.functions.registerAndCommit(draft, registration(), TRAINING_ALLOWED.to_abi())
    out["register_and_commit"] = int((await chain.send(fn, owner))["gasUsed"])
    # the escrow's allowance: approve + openDraftDeal, against openDraftDealWithPermit (fresh accounts)
    args, escrow = (share_size, leaf_size, 3, providers, 10, TOKEN // 100), 10 * 10 * (TOKEN // 100)
    approver, permitter = dev_account(2), dev_account(3)
    fn = chain.token.functions.approve(chain.deployment.storage_market, escrow)
    out["approve"] = int((await chain.send(fn, approver))["gasUsed"])
    receipt = await chain.send(chain.storage_market.functions.openDraftDeal(*args), approver)
    out["open_draft_deal_fresh"] = int(receipt["gasUsed"])
    permit = await chain.escrow_permit(permitter, escrow)
    assert permit is not None
    fn = chain.storage_market.functions.openDraftDealWithPermit(*args, *permit)
    out["open_draft_deal_with_permit"] = int((await chain.send(fn, permitter))["gasUsed"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    g = asyncio.run(run())
    staged = g["register"] + g["open_deal"]
    streamed = g["open_draft_deal"] + g["register_2"] + g["commit_deal"]
    print(f"staged:    register {g['register']:,} + openDeal n=10 {g['open_deal']:,} = {staged:,} gas, 2 transactions")
    print(
        f"streaming, before: openDraftDeal n=10 {g['open_draft_deal']:,} + register {g['register_2']:,}"
        f" + commitDeal {g['commit_deal']:,} = {streamed:,} gas, 3 transactions ({streamed / staged:.3f}x)"
    )
    folded = g["open_draft_deal"] + g["register_and_commit"]
    print(
        f"streaming, now: openDraftDeal n=10 {g['open_draft_deal']:,} + registerAndCommit"
        f" {g['register_and_commit']:,} = {folded:,} gas, 2 transactions ({folded / staged:.3f}x staged,"
        f" {folded / streamed:.3f}x before)"
    )
    approved = g["approve"] + g["open_draft_deal_fresh"]
    print(
        f"escrow allowance: approve {g['approve']:,} + openDraftDeal {g['open_draft_deal_fresh']:,} = {approved:,} gas,"
        f" 2 transactions; openDraftDealWithPermit {g['open_draft_deal_with_permit']:,} gas, 1 transaction"
        f" ({g['open_draft_deal_with_permit'] / approved:.3f}x)"
    )
    if args.json:
        print(json.dumps(g))


if __name__ == "__main__":
    main()
