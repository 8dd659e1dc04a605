"""Typed calls to ``DataPools``: pools, contributions (with their key seals), pool licenses, key
delivery per contribution, disputes and claims. Records and seals are in :mod:`contracts.pool_models`."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from . import delivery, errors
from .connection import Bound, Connection
from .pool_models import Contribution, Pool, PoolLicense, contribution_mask, delivery_mask, open_with, seal_to
from .terms import LicenseTerms, Purpose

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.types import TxReceipt

ZERO_ADDRESS = "0x" + "00" * 20


class PoolCalls(Connection):
    """The ``DataPools`` wrapper (mixed into :class:`contracts.chain.Chain`)."""

    @property
    def pools(self) -> Bound:
        if not self.deployment.data_pools:
            raise errors.DeploymentError("this deployment has no DataPools contract (deployed before data pools)")
        return self._bind("DataPools", self.deployment.data_pools)

    # ------------------------------------------------------------------- seals ----

    def contribution_pad(self, pool_id: int, dataset_id: int) -> Any:
        return partial(
            contribution_mask,
            chain_id=self.deployment.chain_id,
            pools=self.deployment.data_pools,
            pool_id=pool_id,
            dataset_id=dataset_id,
        )

    def delivery_pad(self, license_id: int, contribution_id: int) -> Any:
        return partial(
            delivery_mask,
            chain_id=self.deployment.chain_id,
            pools=self.deployment.data_pools,
            license_id=license_id,
            contribution_id=contribution_id,
        )

    # ------------------------------------------------------------------- pools ----

    async def create_pool(
        self,
        curator: LocalAccount,
        *,
        terms: LicenseTerms,
        price: int,
        curator_fee_bps: int,
        rules: str,
        agent_key: bytes,
        key_agent: str | None = None,
        payment_token: str | None = None,
    ) -> int:
        """Open a pool; ``agent_key`` is the 64-byte BN254 point of its key release. Returns its id."""
        fn = self.pools.functions.createPool(
            terms.to_abi(),
            price,
            curator_fee_bps,
            rules,
            payment_token or self.deployment.token,
            key_agent or ZERO_ADDRESS,
            delivery.check_point(agent_key),
        )
        receipt = await self.send(fn, curator)
        return int(self.tx.event(self.pools, "PoolCreated", receipt)["args"]["poolId"])

    async def contribute(self, contributor: LocalAccount, pool_id: int, dataset_id: int, data_key: bytes) -> int:
        """Add one of the contributor's datasets to a pool, its data key sealed to the pool's key
        release (so the contributor need not be online for sales). Returns the contribution id."""
        pool = await self.get_pool(pool_id)
        sealed = seal_to(data_key, pool.agent_key, self.contribution_pad(pool_id, dataset_id))
        fn = self.pools.functions.contribute(pool_id, dataset_id, *sealed.to_abi())
        receipt = await self.send(fn, contributor)
        return int(self.tx.event(self.pools, "Contributed", receipt)["args"]["contributionId"])

    async def accept_contribution(self, curator: LocalAccount, contribution_id: int, weight: int = 0) -> TxReceipt:
        """Accept with ``weight`` (0: the dataset's plaintext size)."""
        return await self.send(self.pools.functions.accept(contribution_id, weight), curator)

    async def reject_contribution(self, curator: LocalAccount, contribution_id: int) -> TxReceipt:
        return await self.send(self.pools.functions.reject(contribution_id), curator)

    async def withdraw_contribution(self, contributor: LocalAccount, contribution_id: int) -> TxReceipt:
        return await self.send(self.pools.functions.withdrawContribution(contribution_id), contributor)

    async def purchase_pool(
        self,
        buyer: LocalAccount,
        pool_id: int,
        purpose: Purpose,
        buyer_key: bytes,
        *,
        max_price: int | None = None,
    ) -> int:
        """Approve the price and license the pool as it stands; returns the pool license id."""
        pool = await self.get_pool(pool_id)
        if pool.price:
            token = self._bind("TestToken", pool.payment_token)
            await self.send(token.functions.approve(self.deployment.data_pools, pool.price), buyer)
        limit = pool.price if max_price is None else max_price
        key = delivery.check_point(buyer_key)
        fn = self.pools.functions.purchase(pool_id, int(purpose), key, limit, pool.payment_token)
        receipt = await self.send(fn, buyer)
        return int(self.tx.event(self.pools, "PoolLicensePurchased", receipt)["args"]["licenseId"])

    async def deliver_pool_key(
        self, releaser: LocalAccount, license_id: int, contribution_id: int, sealed: delivery.Sealed
    ) -> TxReceipt:
        fn = self.pools.functions.deliverKey(license_id, contribution_id, *sealed.to_abi())
        return await self.send(fn, releaser)

    async def dispute_pool_delivery(
        self, buyer: LocalAccount, license_id: int, contribution_id: int, secret: int, sealed: delivery.Sealed
    ) -> TxReceipt:
        fn = self.pools.functions.dispute(license_id, contribution_id, secret, *sealed.to_abi())
        return await self.send(fn, buyer)

    async def claim_contribution(self, caller: LocalAccount, contribution_id: int) -> int:
        """Pay a contribution's earnings (whole token units) to its contributor; returns the amount."""
        receipt = await self.send(self.pools.functions.claim(contribution_id), caller)
        return int(self.tx.event(self.pools, "ContributionClaimed", receipt)["args"]["amount"])

    async def claim_curator(self, caller: LocalAccount, pool_id: int) -> int:
        receipt = await self.send(self.pools.functions.claimCurator(pool_id), caller)
        return int(self.tx.event(self.pools, "CuratorClaimed", receipt)["args"]["amount"])

    # ------------------------------------------------------------------- views ----

    async def pool_count(self) -> int:
        return int(await self.call(self.pools.functions.poolCount()))

    async def get_pool(self, pool_id: int) -> Pool:
        return Pool.from_abi(pool_id, await self.call(self.pools.functions.getPool(pool_id)))

    async def get_pool_terms(self, pool_id: int) -> LicenseTerms:
        return LicenseTerms.from_abi(await self.call(self.pools.functions.getPoolTerms(pool_id)))

    async def get_contribution(self, contribution_id: int) -> Contribution:
        raw = await self.call(self.pools.functions.getContribution(contribution_id))
        return Contribution.from_abi(contribution_id, raw)

    async def get_pool_license(self, license_id: int) -> PoolLicense:
        return PoolLicense.from_abi(license_id, await self.call(self.pools.functions.getPoolLicense(license_id)))

    async def earned(self, contribution_id: int) -> int:
        return int(await self.call(self.pools.functions.earned(contribution_id)))

    async def earned_scaled(self, contribution_id: int) -> int:
        return int(await self.call(self.pools.functions.earnedScaled(contribution_id)))

    async def covers(self, license_id: int, contribution_id: int) -> bool:
        """In the license's snapshot and (revocable terms) still consented: what a release checks."""
        return bool(await self.call(self.pools.functions.covers(license_id, contribution_id)))

    async def is_pool_license_valid(self, license_id: int) -> bool:
        return bool(await self.call(self.pools.functions.isLicenseValid(license_id)))

    async def pool_rejected_deliveries(self, curator: str) -> int:
        return int(await self.call(self.pools.functions.rejectedDeliveries(curator)))

    async def pool_contributions(self, pool_id: int) -> list[Contribution]:
        """Every contribution to a pool, in order (from ``Contributed`` events, kept by :attr:`event_logs`)."""
        logs = await self.event_logs.get(self.pools, "Contributed", await self.block_number(), poolId=pool_id)
        ids = sorted({int(log["args"]["contributionId"]) for log in logs})
        return [await self.get_contribution(i) for i in ids]

    async def contribution_seal(self, contribution_id: int) -> delivery.Sealed:
        """The contributor's seal of its data key to the pool's key release (from ``Contributed``)."""
        c = await self.get_contribution(contribution_id)
        logs = await self.event_logs.get(
            self.pools, "Contributed", await self.block_number(), contributionId=contribution_id
        )
        for log in logs:
            a = log["args"]
            sealed = delivery.Sealed(delivery.encode_point(int(a["sealX"]), int(a["sealY"])), bytes(a["sealedKey"]))
            (x, y), cipher = sealed.to_abi()
            if keccak(abi_encode(["uint256", "uint256", "bytes32"], [x, y, cipher])) == c.sealed_key_hash:
                return sealed
        raise errors.ChainError(f"no Contributed event with the seal of contribution {contribution_id}")

    async def open_contribution_seal(self, contribution_id: int, agent_secret: int) -> bytes:
        """The data key of a contribution, opened by the pool's key release (unchecked)."""
        c = await self.get_contribution(contribution_id)
        sealed = await self.contribution_seal(contribution_id)
        return open_with(sealed, agent_secret, self.contribution_pad(c.pool_id, c.dataset_id))

    async def pool_purchases(self, from_block: int, to_block: int) -> list[dict[str, Any]]:
        """``PoolLicensePurchased`` events in ``[from_block, to_block]``, in chain order."""
        logs = await self.pools.events.PoolLicensePurchased().get_logs(from_block=from_block, to_block=to_block)
        out = [
            {**dict(log["args"]), "blockNumber": int(log["blockNumber"]), "logIndex": int(log["logIndex"])}
            for log in logs
        ]
        return sorted(out, key=lambda e: (e["blockNumber"], e["logIndex"]))

    async def pool_buyer_key(self, license_id: int) -> bytes:
        lic = await self.get_pool_license(license_id)
        logs = await self.event_logs.get(
            self.pools, "PoolLicensePurchased", await self.block_number(), licenseId=license_id
        )
        for log in logs:
            key = delivery.encode_point(int(log["args"]["buyerKeyX"]), int(log["args"]["buyerKeyY"]))
            if delivery.key_hash(key) == lic.buyer_key_hash:
                return key
        raise errors.ChainError(f"no PoolLicensePurchased event with the buyer key of pool license {license_id}")

    async def pool_deliveries(self, license_id: int) -> dict[int, delivery.Sealed]:
        """What was delivered for a pool license, per contribution id (from ``PoolKeyDelivered``)."""
        logs = await self.event_logs.get(
            self.pools, "PoolKeyDelivered", await self.block_number(), licenseId=license_id
        )
        out: dict[int, delivery.Sealed] = {}
        for log in logs:
            a = log["args"]
            out[int(a["contributionId"])] = delivery.Sealed(
                delivery.encode_point(int(a["rX"]), int(a["rY"])), bytes(a["sealedKey"])
            )
        return out
