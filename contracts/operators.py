"""Typed calls for an operator's life on ``StorageMarket`` beyond staking: announcing its node
(:mod:`contracts.announcements`), reading the announcements back, and leaving."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address

from .announcements import SignedAnnouncement
from .connection import Connection

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.types import TxReceipt


@dataclass(frozen=True, slots=True)
class AnnouncedRecord:
    """One ``Announced`` event: the raw record as the sender put it on-chain (not yet verified)."""

    operator: str  # the transaction's sender: the staked operator the contract checked
    record: bytes
    block: int
    log_index: int


class OperatorCalls(Connection):
    """Announce, read announcements, leave (mixed into :class:`contracts.chain.Chain`)."""

    async def announce(self, operator: LocalAccount, signed: SignedAnnouncement) -> TxReceipt:
        """Put a signed announcement on-chain (``OperatorIsLeaving``, ``StakeTooLow``, ``NotRegistered``
        if the sender cannot take shares). Readers verify the signature; the contract does not."""
        return await self.send(self.storage_market.functions.announce(signed.to_bytes()), operator)

    async def announced(
        self, *, from_block: int | None = None, to_block: int | str = "latest", operator: str | None = None
    ) -> list[AnnouncedRecord]:
        """``Announced`` events in chain order (oldest first), from the deployment block by default."""
        filters: dict[str, Any] = {} if operator is None else {"operator": to_checksum_address(operator)}
        logs = await self.storage_market.events.Announced().get_logs(
            from_block=self.deployment.deployed_block if from_block is None else from_block,
            to_block=to_block,
            argument_filters=filters,
        )
        out = [
            AnnouncedRecord(
                to_checksum_address(log["args"]["operator"]),
                bytes(log["args"]["record"]),
                int(log["blockNumber"]),
                int(log["logIndex"]),
            )
            for log in logs
        ]
        return sorted(out, key=lambda r: (r.block, r.log_index))

    async def leave(self, operator: LocalAccount) -> int:
        """Stop taking new deals; returns the first epoch the stake may be withdrawn (once no
        accepted share is live)."""
        receipt = await self.send(self.storage_market.functions.leave(), operator)
        event = self.tx.event(self.storage_market, "OperatorLeaving", receipt)
        return int(event["args"]["exitEpoch"])

    async def exit_delay_epochs(self) -> int:
        return int(await self.call(self.storage_market.functions.EXIT_DELAY_EPOCHS()))

    @property
    def market_address(self) -> str:
        return self.deployment.storage_market

    async def stake_tokens(self, operator: LocalAccount, amount: int, *, register: bool) -> None:
        """``registerOperator`` or ``addStake`` without approving (the caller checked the allowance)."""
        fn = self.storage_market.functions
        await self.send(fn.registerOperator(amount) if register else fn.addStake(amount), operator)

    async def min_stake(self) -> int:
        return int(await self.call(self.storage_market.functions.minStake()))

    async def allowance(self, owner: str, spender: str) -> int:
        return int(await self.call(self.token.functions.allowance(owner, spender)))
