"""A streaming publish keeps the data key before anything public names the data, and notes the
dataset id beside it by the time it returns (the keystore's fsyncs now overlap the uploads' ends
and the activations: market/streaming.py)."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.chain import Chain
from datasov.devnet import LocalNetwork
from market.keystore import Keystore

from .conftest import Publish

pytestmark = pytest.mark.asyncio


async def test_the_key_is_kept_before_register_and_commit_and_its_id_after(
    net: LocalNetwork, owner: Keystore, publish: Publish, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bytes] = []
    real = Chain.register_and_commit

    async def checked(self: Chain, sender: Any, deal_id: int, registration: Any, terms: Any) -> int:
        seen.append(owner.data_key_for(registration.manifest_hash))  # KeystoreError if not kept yet
        return await real(self, sender, deal_id, registration, terms)

    monkeypatch.setattr(Chain, "register_and_commit", checked)
    offer = await publish()
    key = owner.dataset_key(offer.dataset_id)
    assert key.manifest_hash == offer.pub.manifest_hash
    assert seen == [key.data_key]
