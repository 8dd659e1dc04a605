"""Typed calls to ``LicenseManager``: purchases, key delivery and disputes, refunds, consent, and
the license events an audit reads."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from . import delivery, errors
from .connection import Connection
from .models import License, LicenseStatus
from .registry import RegistryCalls
from .terms import Purpose

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.types import TxReceipt

BLOCK_PROBES = 8
"""Blocks :meth:`LicenseCalls.blocks_at` asks at once per round (per bound searched)."""


def _probes(lo: int, hi: int, fan_out: int) -> list[int]:
    """Up to ``fan_out`` distinct blocks in ``[lo, hi)`` cutting it into near-equal gaps (all of them
    when there are no more)."""
    if hi - lo <= fan_out:
        return list(range(lo, hi))
    return [lo + (hi - lo) * (i + 1) // (fan_out + 1) for i in range(fan_out)]


class LicenseCalls(RegistryCalls, Connection):
    """The ``LicenseManager`` wrapper (mixed into :class:`contracts.chain.Chain`; a purchase reads the
    offer through the registry)."""

    async def purchase(
        self,
        buyer: LocalAccount,
        dataset_id: int,
        purpose: Purpose,
        buyer_key: bytes,
        *,
        max_price: int | None = None,
        terms_version: int | None = None,
        payment_token: str | None = None,
    ) -> int:
        """Approve the price and buy a license under the offer the buyer saw (``terms_version``,
        ``payment_token``, at most ``max_price``; each defaults to the offer as read now).
        ``buyer_key`` is the buyer's 64-byte BN254 point (:mod:`contracts.delivery`). Returns the id."""
        dataset = await self.get_dataset(dataset_id)
        limit = dataset.price if max_price is None else max_price
        version = dataset.terms_version if terms_version is None else terms_version
        token_address = dataset.payment_token if payment_token is None else payment_token
        if dataset.price:
            token = self._bind("TestToken", token_address)
            await self.send(token.functions.approve(self.deployment.license_manager, dataset.price), buyer)
        key = delivery.check_point(buyer_key)
        fn = self.licenses.functions.purchase(dataset_id, int(purpose), key, limit, version, token_address)
        receipt = await self.send(fn, buyer)
        event = self.tx.event(self.licenses, "LicensePurchased", receipt)
        return int(event["args"]["licenseId"])

    async def deliver_key(self, releaser: LocalAccount, license_id: int, sealed: delivery.Sealed) -> TxReceipt:
        return await self.send(self.licenses.functions.deliverKey(license_id, *sealed.to_abi()), releaser)

    async def dispute(self, buyer: LocalAccount, license_id: int, secret: int, sealed: delivery.Sealed) -> TxReceipt:
        """Reveal the license's secret to prove the delivered key wrong; refunds the buyer, or
        raises ``DeliveryIsValid`` if the key was right."""
        return await self.send(self.licenses.functions.dispute(license_id, secret, *sealed.to_abi()), buyer)

    async def claim_payment(self, caller: LocalAccount, license_id: int) -> TxReceipt:
        """Pay a delivered license's escrow to the dataset owner (after the dispute window)."""
        return await self.send(self.licenses.functions.claimPayment(license_id), caller)

    async def rejected_deliveries(self, owner: str) -> int:
        return int(await self.call(self.licenses.functions.rejectedDeliveries(owner)))

    async def delivery_context(self, license_id: int) -> delivery.Context:
        """What a delivery for ``license_id`` is bound to on this deployment."""
        return delivery.Context(self.deployment.chain_id, self.deployment.license_manager, license_id)

    async def refund(self, caller: LocalAccount, license_id: int) -> None:
        await self.send(self.licenses.functions.refund(license_id), caller)

    async def revoke_consent(self, owner: LocalAccount, dataset_id: int) -> None:
        await self.send(self.licenses.functions.revokeConsent(dataset_id), owner)

    async def consent_revoked_at(self, dataset_id: int) -> int:
        return int(await self.call(self.licenses.functions.consentRevokedAt(dataset_id)))

    async def is_license_valid(self, license_id: int) -> bool:
        return bool(await self.call(self.licenses.functions.isLicenseValid(license_id)))

    async def get_license(self, license_id: int) -> License:
        return License.from_abi(license_id, await self.call(self.licenses.functions.getLicense(license_id)))

    async def blocks_at(self, timestamp: int, *, fan_out: int = BLOCK_PROBES) -> tuple[int, int]:
        """The blocks mined at ``timestamp`` (first, last), found by a ``fan_out``-ary search over
        block times (each round asks ``fan_out`` blocks at once and keeps the gap between two of
        them: log base fan_out + 1 of the chain's length in round trips, not log 2 of it twice); a
        record's time stamp (purchase, delivery...) then narrows a log query to a few blocks."""
        lo, hi = self.deployment.deployed_block, await self.block_number() + 1
        first, after = [lo, hi], [lo, hi]  # [lo, hi): the first block with timestamp >= t, and > t
        times: dict[int, int] = {}
        while first[0] < first[1] or after[0] < after[1]:
            probes = sorted({p for b in (first, after) if b[0] < b[1] for p in _probes(b[0], b[1], fan_out)})
            asked = [p for p in probes if p not in times]
            blocks = await asyncio.gather(*(self.get_block(p) for p in asked))
            times.update(zip(asked, (int(b["timestamp"]) for b in blocks), strict=True))
            for bounds, strictly in ((first, False), (after, True)):
                for p in probes:  # probes ascend; block times never decrease
                    if bounds[0] <= p < bounds[1]:
                        if times[p] > timestamp or (times[p] == timestamp and not strictly):
                            bounds[1] = p
                            break
                        bounds[0] = p + 1
        return first[0], after[0] - 1

    async def _license_logs(self, name: str, license_id: int, at: int | None) -> list[Any]:
        start, end = (self.deployment.deployed_block, "latest") if not at else await self.blocks_at(at)
        event = getattr(self.licenses.events, name)()
        logs: list[Any] = await event.get_logs(
            from_block=start, to_block=end, argument_filters={"licenseId": license_id}
        )
        return logs

    async def delivery(self, license_id: int, lic: License | None = None) -> delivery.Sealed | None:
        """What was delivered for a license (from the KeyDelivered event), if anything (``lic``: the
        license as the caller read it, not read again)."""
        if lic is None or lic.license_id != license_id:
            lic = await self.get_license(license_id)
        if not lic.delivered_at:
            return None
        logs = await self._license_logs("KeyDelivered", license_id, lic.delivered_at)
        if not logs:
            return None
        args = logs[-1]["args"]
        return delivery.Sealed(delivery.encode_point(int(args["rX"]), int(args["rY"])), bytes(args["sealedKey"]))

    async def buyer_key(self, license_id: int) -> bytes:
        """The buyer's BN254 key of a license (from the LicensePurchased event)."""
        lic = await self.get_license(license_id)
        rotated = await self._license_logs("BuyerKeyRotated", license_id, None)  # after a piece dispute
        for log in reversed(rotated):
            key = delivery.encode_point(int(log["args"]["buyerKeyX"]), int(log["args"]["buyerKeyY"]))
            if delivery.key_hash(key) == lic.buyer_key_hash:
                return key
        for log in reversed(await self._license_logs("LicensePurchased", license_id, lic.purchased_at)):
            key = delivery.encode_point(int(log["args"]["buyerKeyX"]), int(log["args"]["buyerKeyY"]))
            if delivery.key_hash(key) == lic.buyer_key_hash:
                return key
        raise errors.ChainError(f"no LicensePurchased event with the buyer key of license {license_id}")

    async def purchases(self, from_block: int, to_block: int) -> list[dict[str, Any]]:
        """``LicensePurchased`` events in ``[from_block, to_block]`` (decoded args, block number and
        log index), in chain order."""
        logs = await self.licenses.events.LicensePurchased().get_logs(from_block=from_block, to_block=to_block)
        out = [
            {**dict(log["args"]), "blockNumber": int(log["blockNumber"]), "logIndex": int(log["logIndex"])}
            for log in logs
        ]
        return sorted(out, key=lambda e: (e["blockNumber"], e["logIndex"]))

    async def license_events(self, license_id: int) -> dict[str, dict[str, Any]]:
        """The purchase and key-delivery events of a license: tx hash, block, block time."""
        out: dict[str, dict[str, Any]] = {}
        lic = await self.get_license(license_id)
        times = {"LicensePurchased": lic.purchased_at, "KeyDelivered": lic.delivered_at, "Refunded": None}
        for name, at in times.items():
            if (name == "KeyDelivered" and at == 0) or (name == "Refunded" and lic.status != LicenseStatus.REFUNDED):
                continue  # no such event to look for
            logs = await self._license_logs(name, license_id, at)
            if logs:
                log = logs[-1]
                block = await self.get_block(log["blockNumber"])
                out[name] = {
                    "tx": "0x" + bytes(log["transactionHash"]).hex(),
                    "block": int(log["blockNumber"]),
                    "block_hash": "0x" + bytes(block["hash"]).hex(),
                    "time": int(block["timestamp"]),
                }
        return out
