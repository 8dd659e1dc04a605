"""Labs never pay for a dataset nobody can serve (issue 11, "Labs pay for datasets nobody can
serve"): a purchase needs an active deal holding at least k healthy shares, delivery checks it
again, and the owner's key agent never delivers for an unservable dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import delivery, errors
from contracts.chain import Chain
from contracts.models import LicenseStatus
from contracts.terms import Purpose
from market import key_agent
from market.keystore import Keystore

from .conftest import BUYER, OWNER, Published, make_servable

SECRET = delivery.new_secret()
BUYER_KEY = delivery.public_key(SECRET)


async def test_purchase_of_an_unservable_dataset_is_refused(chain: Chain, published: Published) -> None:
    ds, n = published.dataset_id, published.manifest.n
    with pytest.raises(errors.DatasetNotServable):  # no deal at all
        await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, BUYER_KEY)
    assert await chain.balance_of(chain.deployment.license_manager) == 0
    await make_servable(chain, ds, n)
    assert await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, BUYER_KEY) > 0


async def test_no_delivery_once_the_dataset_is_no_longer_servable(
    chain: Chain, published: Published, tmp_path: Path
) -> None:
    ds, n = published.dataset_id, published.manifest.n
    deal = await make_servable(chain, ds, n)
    lic = await chain.purchase(BUYER, ds, Purpose.AI_TRAINING, BUYER_KEY)
    await chain.terminate_deal(OWNER, deal)  # storage ended: nobody will serve the shares
    await chain.advance_to_epoch((await chain.get_deal(deal)).start_epoch + 1)
    assert not await chain.is_servable(ds)

    store = Keystore.create(tmp_path, b"pw", account=OWNER)
    store.add_dataset(published.manifest.hash(), published.key, dataset_id=ds)
    nonce = await chain.w3.eth.get_transaction_count(OWNER.address)
    [decision] = await key_agent.KeyAgent(chain, store, home=tmp_path).tick()
    assert decision.outcome == "refused"
    assert "servable" in decision.reason
    assert await chain.w3.eth.get_transaction_count(OWNER.address) == nonce  # the key never left
    sealed = delivery.seal(published.key, BUYER_KEY, await chain.delivery_context(lic))
    with pytest.raises(errors.DatasetNotServable):  # the contract refuses it too
        await chain.deliver_key(OWNER, lic, sealed)
    assert (await chain.get_license(lic)).status == LicenseStatus.PENDING
