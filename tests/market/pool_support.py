"""Shared set-up of the data-pool tests: three servable datasets of three contributors, a curator
with a key-release key, and helpers to open a pool and run a sale."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from contracts import delivery
from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.pool_models import SCALE
from contracts.terms import TRAINING_ALLOWED, LicenseTerms

from .conftest import AGENT, BUYER, DEPLOYER, OWNER, STRANGER, encode_sample, make_servable, register

CURATOR = AGENT
CONTRIBUTORS = (OWNER, STRANGER, DEPLOYER)
LAB = BUYER
RELEASE_SECRET = delivery.new_secret()
RELEASE_KEY = delivery.public_key(RELEASE_SECRET)
LAB_SECRET = delivery.new_secret()
LAB_KEY = delivery.public_key(LAB_SECRET)
POOL_PRICE = 7 * TOKEN + 3  # odd, so the split leaves dust
FEE_BPS = 1_000


class Contributed:
    """One contributor's dataset: its id and data key (never printed)."""

    def __init__(self, contributor: LocalAccount, dataset_id: int, size: int, key: bytes) -> None:
        self.contributor, self.dataset_id, self.size, self.key = contributor, dataset_id, size, key

    def __repr__(self) -> str:
        return f"Contributed(dataset_id={self.dataset_id}, size={self.size})"


async def three_datasets(chain: Chain) -> list[Contributed]:
    """Three registered, servable datasets, one per contributor, of different sizes."""
    out = []
    for i, who in enumerate(CONTRIBUTORS):
        man, _, key = encode_sample(size=5_000 * (i + 1))
        ds = await register(chain, man, owner=who)
        await make_servable(chain, ds, man.n, owner=who)
        out.append(Contributed(who, ds, man.plaintext_size, key))
    return out


async def open_pool(
    chain: Chain,
    *,
    terms: LicenseTerms = TRAINING_ALLOWED,
    price: int = POOL_PRICE,
    fee_bps: int = FEE_BPS,
    payment_token: str | None = None,
) -> int:
    return await chain.create_pool(
        CURATOR,
        terms=terms,
        price=price,
        curator_fee_bps=fee_bps,
        rules="one folder of text per contributor; no personal data",
        agent_key=RELEASE_KEY,
        payment_token=payment_token,
    )


async def scaled_holdings(chain: Chain, pool_ids: list[int], contribution_ids: list[int]) -> int:
    """What the contract owes, in scaled units: every credit, every carry and every curator fee."""
    total = sum([await chain.earned_scaled(c) for c in contribution_ids])
    for p in pool_ids:
        pool = await chain.get_pool(p)
        total += pool.carry + pool.curator_owed * SCALE
    return total
