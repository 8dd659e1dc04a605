"""The chain calls a storage node makes, as a narrow Protocol (``contracts.chain.Chain`` satisfies it).

Declared here, by the consumer, so tests can count or fake the calls and the node depends on three
reads, not on the whole client.
"""

from __future__ import annotations

from typing import Protocol

from contracts.models import Dataset, Deal, Share


class DealChain(Protocol):
    async def get_deal(self, deal_id: int) -> Deal:
        """The deal; raises ``contracts.errors.NotFound`` if there is none."""

    async def get_share(self, deal_id: int, share_index: int) -> Share:
        """Share ``share_index`` of a deal (its provider, proof state)."""

    async def get_dataset(self, dataset_id: int) -> Dataset:
        """The registered dataset (manifest hash, share and leaf sizes)."""
