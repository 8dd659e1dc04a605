"""An operator's membership of the network, on-chain: stake, announce, re-announce, read it back.

    join(chain, account, announcement, stake=None)   checks ETH and tokens, approves only what is
                                                     missing, registers or tops up the stake, announces
    ensure_announced(chain, account, announcement)   re-announces only if the newest valid on-chain
                                                     announcement differs (URL, terms, peer, addresses)
    latest_announcement(chain, address)              the newest announcement whose signature is the
                                                     operator's (forged ones skipped)

The same functions serve ``datasov node join``, ``datasov node run --rpc`` (re-announce on start)
and the in-process devnet, so every node reaches the chain the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from contracts.announcements import Announcement, AnnouncementError, SignedAnnouncement
from contracts.models import Operator
from contracts.operators import AnnouncedRecord

from .errors import NodeError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.types import TxReceipt

log = logging.getLogger("datasov.node.membership")


class JoinError(NodeError):
    """The operator cannot join as asked (leaving, stake below the minimum, no funds for it)."""

    code = "join_refused"


class InsufficientFunds(JoinError):
    """The operator's wallet lacks the tokens to stake, or the ETH to pay gas."""

    code = "insufficient_funds"


class MembershipChain(Protocol):
    """The chain calls joining needs (``contracts.chain.Chain`` has them)."""

    async def get_operator(self, address: str) -> Operator: ...
    async def min_stake(self) -> int: ...
    async def balance_of(self, address: str) -> int: ...
    async def eth_balance(self, address: str) -> int: ...
    async def allowance(self, owner: str, spender: str) -> int: ...
    async def approve(self, owner: LocalAccount, spender: str, amount: int) -> None: ...
    async def stake_tokens(self, operator: LocalAccount, amount: int, *, register: bool) -> None: ...
    async def announce(self, operator: LocalAccount, signed: SignedAnnouncement) -> TxReceipt: ...
    async def announced(
        self, *, from_block: int | None = None, to_block: int | str = "latest", operator: str | None = None
    ) -> list[AnnouncedRecord]: ...

    @property
    def market_address(self) -> str: ...


@dataclass(frozen=True, slots=True)
class JoinResult:
    operator: str
    staked: int  # tokens (base units) added by this call
    stake: int  # the operator's stake now
    announced: bool  # False: the same announcement was already on-chain
    announcement: Announcement

    def to_json(self) -> dict[str, Any]:
        """``datasov node join --json``'s result (amounts as decimal strings of base units)."""
        return {
            "operator": self.operator,
            "staked": str(self.staked),
            "stake": str(self.stake),
            "announced": self.announced,
            "url": self.announcement.http_url,
            "ask": str(self.announcement.ask),
        }


def same_terms(a: Announcement, b: Announcement) -> bool:
    """Equal in everything but the time they were issued."""
    return replace(a, issued_at=0) == replace(b, issued_at=0)


async def latest_announcement(chain: MembershipChain, address: str) -> SignedAnnouncement | None:
    """The operator's newest on-chain announcement that verifies and names it (else None)."""
    for record in reversed(await chain.announced(operator=address)):
        try:
            signed = SignedAnnouncement.open(record.record)
        except AnnouncementError as err:
            log.warning("ignoring an announcement by %s in block %d: %s", address, record.block, err)
            continue
        if signed.announcement.operator.lower() == address.lower():
            return signed
        log.warning("ignoring an announcement by %s naming %s", address, signed.announcement.operator)
    return None


async def ensure_announced(chain: MembershipChain, account: LocalAccount, announcement: Announcement) -> bool:
    """Announce unless the newest valid announcement already says the same; True if it announced."""
    current = await latest_announcement(chain, account.address)
    if current is not None and same_terms(current.announcement, announcement):
        return False
    fresh = announcement.with_time()
    if current is not None and fresh.issued_at <= current.announcement.issued_at:
        fresh = fresh.with_time(current.announcement.issued_at + 1)  # newer wins, even with a slow clock
    await chain.announce(account, fresh.sign(account))
    log.info("announced %s at %s (ask %d per GiB per epoch)", account.address, fresh.http_url, fresh.ask)
    return True


async def join(
    chain: MembershipChain, account: LocalAccount, announcement: Announcement, *, stake: int | None = None
) -> JoinResult:
    """Stake (register with ``stake``, default the minimum; or add ``stake`` to an existing one) and
    announce. Refuses before sending anything if the wallet cannot pay for it."""
    address = account.address
    op = await chain.get_operator(address)
    if op.leaving:
        raise JoinError(f"operator {address} is leaving (exit epoch {op.exit_epoch}); it cannot join again")
    minimum = await chain.min_stake()
    if op.registered:
        amount = stake if stake is not None else max(minimum - op.stake, 0)
    else:
        amount = minimum if stake is None else stake
        if amount < minimum:
            raise JoinError(f"a stake of {amount} is below the minimum of {minimum}")
    if await chain.eth_balance(address) == 0:
        raise InsufficientFunds(f"{address} holds no ETH to pay gas")
    balance = await chain.balance_of(address)
    if balance < amount:
        raise InsufficientFunds(f"staking {amount} needs that many tokens; {address} holds {balance}")
    if amount > 0 or not op.registered:
        if await chain.allowance(address, chain.market_address) < amount:
            await chain.approve(account, chain.market_address, amount)
        await chain.stake_tokens(account, amount, register=not op.registered)
    announced = await ensure_announced(chain, account, announcement)
    after = await chain.get_operator(address)
    return JoinResult(address, amount, after.stake, announced, announcement)
