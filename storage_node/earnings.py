"""What an operator has on-chain: stake, shares, proofs, fees, slashes, exit; and claiming its fees.

The shares an operator is (or was) responsible for come from the chain (``ShareAccepted`` events
naming it), not from the node's disk, so fees of shares already collected by the garbage collector
are still found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contracts.chain import Chain
from contracts.proofs import proven_shares

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


@dataclass(frozen=True, slots=True)
class OperatorStatus:
    registered: bool
    stake: int
    active_shares: int  # accepted, not faulty, deal not settled
    shares_accepted: int  # ever
    proofs_made: int
    proofs_missed: int  # reported (each one slashed)
    slashed: int
    fees_claimed: int  # moved to the withdrawable balance so far
    claimable: int  # proven but not yet claimed (node claim)
    withdrawable: int  # node withdraw
    leaving: bool
    exit_epoch: int  # 0 when not leaving
    current_epoch: int
    exit_ready: bool  # the stake may be withdrawn now

    def to_json(self) -> dict[str, Any]:
        """Token amounts as decimal strings (they exceed JSON's safe integers)."""
        return {
            "registered": self.registered,
            "stake": str(self.stake),
            "active_shares": self.active_shares,
            "shares_accepted": self.shares_accepted,
            "proofs_made": self.proofs_made,
            "missed_proofs": self.proofs_missed,
            "slashed": str(self.slashed),
            "fees_claimed": str(self.fees_claimed),
            "unclaimed_fees": str(self.claimable),
            "withdrawable": str(self.withdrawable),
            "leaving": self.leaving,
            "exit_epoch": self.exit_epoch,
            "current_epoch": self.current_epoch,
            "exit_ready": self.exit_ready,
        }


async def _logs(chain: Chain, event: str, **filters: Any) -> list[Any]:
    found = await getattr(chain.storage_market.events, event)().get_logs(
        from_block=chain.deployment.deployed_block, argument_filters=filters
    )
    return list(found)


async def shares_of(chain: Chain, address: str) -> list[tuple[int, int]]:
    """(deal id, share index) of every share ``address`` accepted, oldest first."""
    logs = await _logs(chain, "ShareAccepted", provider=address)
    seen = dict.fromkeys((int(e["args"]["dealId"]), int(e["args"]["shareIndex"])) for e in logs)
    return list(seen)


async def claimable_shares(chain: Chain, address: str) -> list[tuple[int, int, int]]:
    """(deal, share, amount) still held by ``address`` with fees proven and not claimed."""
    out = []
    for deal_id, index in await shares_of(chain, address):
        share = await chain.get_share(deal_id, index)
        if share.provider.lower() == address.lower() and share.unclaimed:
            out.append((deal_id, index, share.unclaimed * (await chain.get_deal(deal_id)).fee_per_share_epoch))
    return out


async def operator_status(chain: Chain, address: str) -> OperatorStatus:
    op = await chain.get_operator(address)
    shares = await shares_of(chain, address)
    proofs = 0
    if shares:
        proven = await _logs(chain, "StorageProofs", provider=address)  # one event per call, its own proofs
        proofs = sum(len(proven_shares(bytes(e["args"]["shares"]))) for e in proven)
    missed = await _logs(chain, "ProofMissed", provider=address)
    claimed = await _logs(chain, "FeesClaimed", provider=address)
    epoch = await chain.current_epoch()
    return OperatorStatus(
        registered=op.registered,
        stake=op.stake,
        active_shares=op.active_shares,
        shares_accepted=len(shares),
        proofs_made=proofs,
        proofs_missed=len(missed),
        slashed=sum(int(e["args"]["slashed"]) for e in missed),
        fees_claimed=sum(int(e["args"]["amount"]) for e in claimed),
        claimable=sum(amount for _, _, amount in await claimable_shares(chain, address)),
        withdrawable=await chain.storage_balance(address),
        leaving=op.leaving,
        exit_epoch=op.exit_epoch,
        current_epoch=epoch,
        exit_ready=op.leaving and epoch >= op.exit_epoch and op.active_shares == 0 and op.stake > 0,
    )


async def claim_all(chain: Chain, account: LocalAccount) -> tuple[int, int]:
    """Claim every share's proven fees into the withdrawable balance: (shares claimed, amount)."""
    todo = await claimable_shares(chain, account.address)
    for deal_id, index, _ in todo:
        await chain.claim_fees(account, deal_id, index)
    return len(todo), sum(amount for _, _, amount in todo)
