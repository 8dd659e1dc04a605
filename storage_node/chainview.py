"""The chain calls a storage node makes, as narrow Protocols (``contracts.chain.Chain`` satisfies them).

Declared here, by the consumer (STYLE.md #1), so the node depends on a handful of reads and three
kinds of transaction, not on the whole client, and tests can count or fake the calls::

    DealChain       the order authoriser: is the deal real, is this node its provider, what dataset
                    (OrderViewChain: all of it in one read, where the chain offers it)
    EpochChain      the deletion guard and garbage collection: what is owed in the current epoch
    ProverChain     the prover: challenges, proofs, acceptance and fee claims (an EpochChain too)

Errors are those of :mod:`contracts.errors` (``NotFound`` for an unknown deal or share,
``ChainError`` for anything that went wrong talking to the chain).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from contracts.models import Dataset, Deal, ProofDuty, Share, StorageProof

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.types import TxReceipt


class DealChain(Protocol):
    async def get_deal(self, deal_id: int) -> Deal:
        """The deal; raises ``contracts.errors.NotFound`` if there is none."""

    async def get_share(self, deal_id: int, share_index: int) -> Share:
        """Share ``share_index`` of a deal (its provider, proof state)."""

    async def get_dataset(self, dataset_id: int) -> Dataset:
        """The registered dataset (manifest hash, share and leaf sizes)."""


@runtime_checkable
class OrderViewChain(DealChain, Protocol):
    """A DealChain that also answers an order's checks in one read (``StorageMarket.orderView``)."""

    async def order_view(self, deal_id: int, share_index: int) -> tuple[Deal, Share, bytes]:
        """The deal, the share and the dataset's manifest hash (zero for a draft deal)."""


class EpochChain(Protocol):
    async def get_deal(self, deal_id: int) -> Deal:
        """The deal; raises ``contracts.errors.NotFound`` if there is none."""

    async def get_share(self, deal_id: int, share_index: int) -> Share:
        """Share ``share_index`` of a deal (its provider, proof state)."""

    async def current_epoch(self) -> int:
        """The storage market's current epoch."""


class ProverChain(EpochChain, Protocol):
    async def block_number(self) -> int:
        """The latest block."""

    async def epoch_start_block(self, epoch: int) -> int:
        """The first block of ``epoch`` (its hash seeds the epoch's challenges)."""

    async def proof_duty(self, deal_id: int, share_index: int, epoch: int) -> ProofDuty:
        """Who provides the share, whether a proof of it is owed in ``epoch``, and the challenged leaf."""

    async def accept_share(self, provider: LocalAccount, deal_id: int, share_index: int) -> None:
        """Accept an assigned share (raises ``contracts.errors.StateError`` once the deal is over)."""

    async def prove_storage(self, provider: LocalAccount, proof: StorageProof) -> TxReceipt:
        """Submit one storage proof."""

    async def prove_storage_batch(self, provider: LocalAccount, proofs: Sequence[StorageProof]) -> TxReceipt:
        """Submit several storage proofs in one transaction."""

    async def claim_fees(self, caller: LocalAccount, deal_id: int, share_index: int) -> None:
        """Move a share's earned fees to its provider's withdrawable balance."""
