"""Typed calls to ``StorageMarket``: operators and stake, deals and shares, storage proofs, missed-proof
reports, fees, epochs and challenges."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import errors
from . import proofs as packed
from .connection import Connection
from .models import Deal, Operator, ProofDuty, Share, StorageProof

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.types import TxReceipt

    from .registry import Registration
    from .terms import LicenseTerms

PERMIT_SECONDS = 3600
"""How long an escrow permit stays valid (it is used in the transaction it was signed for)."""
PERMIT_TYPE = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
"""EIP-2612's Permit struct."""


def _share(t: Sequence[Any]) -> Share:
    return Share(str(t[0]), int(t[1]), int(t[2]), int(t[3]), bool(t[4]), bool(t[5]))


class StorageCalls(Connection):
    """The ``StorageMarket`` wrapper (mixed into :class:`contracts.chain.Chain`)."""

    async def register_operator(self, operator: LocalAccount, stake: int) -> None:
        await self.approve(operator, self.deployment.storage_market, stake)
        await self.send(self.storage_market.functions.registerOperator(stake), operator)

    async def add_stake(self, operator: LocalAccount, amount: int) -> None:
        await self.approve(operator, self.deployment.storage_market, amount)
        await self.send(self.storage_market.functions.addStake(amount), operator)

    async def withdraw_stake(self, operator: LocalAccount, amount: int) -> None:
        await self.send(self.storage_market.functions.withdrawStake(amount), operator)

    async def get_operator(self, address: str) -> Operator:
        t = await self.call(self.storage_market.functions.getOperator(address))
        return Operator(int(t[0]), int(t[1]), bool(t[2]), int(t[3]))

    async def open_deal(
        self, owner: LocalAccount, dataset_id: int, providers: Sequence[str], *, epochs: int, fee_per_share_epoch: int
    ) -> int:
        escrow = len(providers) * epochs * fee_per_share_epoch
        if escrow:
            await self.approve(owner, self.deployment.storage_market, escrow)
        fn = self.storage_market.functions.openDeal(dataset_id, list(providers), epochs, fee_per_share_epoch)
        receipt = await self.send(fn, owner)
        event = self.tx.event(self.storage_market, "DealOpened", receipt)
        return int(event["args"]["dealId"])

    async def open_draft_deal(
        self,
        owner: LocalAccount,
        *,
        share_size: int,
        leaf_size: int,
        k: int,
        providers: Sequence[str],
        epochs: int,
        fee_per_share_epoch: int,
    ) -> int:
        """Open a deal before its dataset exists (``openDraftDeal``): escrow pulled now, no share
        acceptable until :meth:`commit_deal`. Returns the deal id."""
        escrow = len(providers) * epochs * fee_per_share_epoch
        args = (share_size, leaf_size, k, list(providers), epochs, fee_per_share_epoch)
        permit = await self.escrow_permit(owner, escrow) if escrow else None
        if permit is not None:  # the allowance granted inside the deal's own transaction
            fn = self.storage_market.functions.openDraftDealWithPermit(*args, *permit)
        else:
            if escrow:
                await self.approve(owner, self.deployment.storage_market, escrow)
            fn = self.storage_market.functions.openDraftDeal(*args)
        receipt = await self.send(fn, owner)
        event = self.tx.event(self.storage_market, "DealDrafted", receipt)
        return int(event["args"]["dealId"])

    async def escrow_permit(
        self, owner: LocalAccount, amount: int, *, valid_for: int = PERMIT_SECONDS
    ) -> tuple[int, int, bytes, bytes] | None:
        """``(deadline, v, r, s)``: an EIP-2612 permit, signed by ``owner``, for the market to pull
        exactly ``amount`` of the token, valid ``valid_for`` seconds of chain time; None when the
        token has no permit (``eip712Domain``/``nonces`` revert: then ``approve`` it is)."""
        try:
            domain, nonce, latest = await asyncio.gather(
                self.call(self.token.functions.eip712Domain()),
                self.call(self.token.functions.nonces(owner.address)),
                self.w3.eth.get_block("latest"),
            )
        except errors.ChainError:
            return None
        _fields, name, version, chain_id, verifying_contract, _salt, _extensions = domain
        deadline = int(latest["timestamp"]) + valid_for
        signed = owner.sign_typed_data(
            domain_data={
                "name": name,
                "version": version,
                "chainId": int(chain_id),
                "verifyingContract": verifying_contract,
            },
            message_types={"Permit": PERMIT_TYPE},
            message_data={
                "owner": owner.address,
                "spender": self.deployment.storage_market,
                "value": amount,
                "nonce": int(nonce),
                "deadline": deadline,
            },
        )
        return deadline, signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")

    async def commit_deal(self, owner: LocalAccount, deal_id: int, dataset_id: int) -> None:
        """Bind a draft deal to a registered dataset of the same sizes (its root becomes the deal's)."""
        await self.send(self.storage_market.functions.commitDeal(deal_id, dataset_id), owner)

    async def register_and_commit(
        self, owner: LocalAccount, deal_id: int, registration: Registration, terms: LicenseTerms
    ) -> int:
        """Register the dataset and commit the draft deal to it in one transaction
        (``registerAndCommit``: the checks of :meth:`commit_deal` hold). Returns the dataset id."""
        fn = self.storage_market.functions.registerAndCommit(
            deal_id, registration.to_abi(self.deployment.token), terms.to_abi()
        )
        receipt = await self.send(fn, owner)
        event = self.tx.event(self.registry, "DatasetRegistered", receipt)
        return int(event["args"]["datasetId"])

    async def accept_share(self, provider: LocalAccount, deal_id: int, share_index: int) -> None:
        await self.send(self.storage_market.functions.acceptShare(deal_id, share_index), provider)

    async def prove_storage(self, provider: LocalAccount, proof: StorageProof) -> TxReceipt:
        return await self.prove_storage_batch(provider, [proof])

    async def prove_storage_batch(self, provider: LocalAccount, proofs: Sequence[StorageProof]) -> TxReceipt:
        """One ``proveStorage`` call for up to 255 proofs of one epoch (all or nothing), in the
        packed layout of :mod:`contracts.proofs`."""
        return await self.send(self.storage_market.functions.proveStorage(packed.encode(proofs)), provider)

    async def report_missed_proof(self, reporter: LocalAccount, deal_id: int, share_index: int, epoch: int) -> None:
        await self.send(self.storage_market.functions.reportMissedProof(deal_id, share_index, epoch), reporter)

    async def claim_fees(self, caller: LocalAccount, deal_id: int, share_index: int) -> None:
        """Move a share's earned fees to its provider's withdrawable balance."""
        await self.send(self.storage_market.functions.claimFees(deal_id, share_index), caller)

    async def replace_provider(self, owner: LocalAccount, deal_id: int, share_index: int, new_provider: str) -> None:
        await self.send(self.storage_market.functions.replaceProvider(deal_id, share_index, new_provider), owner)

    async def terminate_deal(self, owner: LocalAccount, deal_id: int) -> None:
        await self.send(self.storage_market.functions.terminateDeal(deal_id), owner)

    async def settle_deal(self, caller: LocalAccount, deal_id: int) -> None:
        await self.send(self.storage_market.functions.settleDeal(deal_id), caller)

    async def withdraw(self, account: LocalAccount) -> None:
        await self.send(self.storage_market.functions.withdraw(), account)

    async def storage_balance(self, address: str) -> int:
        """What ``address`` can withdraw from StorageMarket (fees earned, reporter rewards, released stake)."""
        return int(await self.call(self.storage_market.functions.balances(address)))

    async def deals_of(self, *, dataset_id: int | None = None, owner: str | None = None) -> list[int]:
        """Ids of the deals opened for a dataset and/or by an owner, oldest first."""
        filters: dict[str, Any] = {}
        if dataset_id is not None:
            filters["datasetId"] = dataset_id
        if owner is not None:
            filters["owner"] = owner
        logs = await self.storage_market.events.DealOpened().get_logs(
            from_block=self.deployment.deployed_block, argument_filters=filters
        )
        return [int(log["args"]["dealId"]) for log in logs]

    async def deals_of_datasets(self, dataset_ids: Sequence[int]) -> dict[int, list[int]]:
        """dataset id -> ids of the deals opened for it, oldest first: one log read for all."""
        out: dict[int, list[int]] = {i: [] for i in dataset_ids}
        if not out:
            return out
        logs = await self.storage_market.events.DealOpened().get_logs(
            from_block=self.deployment.deployed_block, argument_filters={"datasetId": list(out)}
        )
        for log in sorted(logs, key=lambda log: int(log["args"]["dealId"])):
            out[int(log["args"]["datasetId"])].append(int(log["args"]["dealId"]))
        return out

    async def terminated_deals(self, deal_ids: Sequence[int]) -> set[int]:
        """Those of ``deal_ids`` their owner terminated early: one log read."""
        if not deal_ids:
            return set()
        logs = await self.storage_market.events.DealTerminated().get_logs(
            from_block=self.deployment.deployed_block, argument_filters={"dealId": list(deal_ids)}
        )
        return {int(log["args"]["dealId"]) for log in logs}

    async def get_deal(self, deal_id: int) -> Deal:
        return Deal.from_abi(deal_id, await self.call(self.storage_market.functions.getDeal(deal_id)))

    async def order_view(self, deal_id: int, share_index: int) -> tuple[Deal, Share, bytes]:
        """The deal, the share and the dataset's manifest hash (zero for a draft deal), in one read."""
        d, t, manifest_hash = await self.call(self.storage_market.functions.orderView(deal_id, share_index))
        share = _share(t)
        return Deal.from_abi(deal_id, d), share, bytes(manifest_hash)

    async def is_servable(self, dataset_id: int) -> bool:
        """Does the dataset have an open deal with at least k accepted, non-faulty shares?"""
        return bool(await self.call(self.storage_market.functions.isServable(dataset_id)))

    async def healthy_shares(self, deal_id: int) -> int:
        """Shares of the deal accepted by their provider and not faulty (0 once settled)."""
        return int(await self.call(self.storage_market.functions.healthyShares(deal_id)))

    async def get_share(self, deal_id: int, share_index: int) -> Share:
        return _share(await self.call(self.storage_market.functions.getShare(deal_id, share_index)))

    async def get_shares(self, deal_id: int) -> list[Share]:
        """Every share of the deal in index order, in one read."""
        found = await self.call(self.storage_market.functions.getShares(deal_id))
        return [_share(t) for t in found]

    async def current_epoch(self) -> int:
        return int(await self.call(self.storage_market.functions.currentEpoch()))

    async def epoch_start_block(self, epoch: int) -> int:
        return int(await self.call(self.storage_market.functions.epochStartBlock(epoch)))

    async def challenge_leaf(self, deal_id: int, share_index: int, epoch: int) -> int:
        return int(await self.call(self.storage_market.functions.challengeLeaf(deal_id, share_index, epoch)))

    async def proof_duty(self, deal_id: int, share_index: int, epoch: int) -> ProofDuty:
        """Who provides the share, whether a proof is owed in ``epoch``, and its leaf: one read."""
        provider, owed, leaf = await self.call(self.storage_market.functions.proofDuty(deal_id, share_index, epoch))
        return ProofDuty(str(provider), bool(owed), int(leaf))

    async def is_proven(self, deal_id: int, share_index: int, epoch: int) -> bool:
        return bool(await self.call(self.storage_market.functions.isProven(deal_id, share_index, epoch)))

    async def is_due(self, deal_id: int, share_index: int, epoch: int) -> bool:
        return bool(await self.call(self.storage_market.functions.isDue(deal_id, share_index, epoch)))
