"""Typed calls to ``KeyGuardians`` and to the guardian path of ``LicenseManager``: guardian keys,
a dataset's guardian set (epoch, threshold, piece commitments, sealed pieces), piece delivery,
the one release check (``mayRelease``), piece disputes and the record of bad pieces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import delivery, errors
from .connection import Connection

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.types import TxReceipt


@dataclass(frozen=True, slots=True)
class GuardianSet:
    """One epoch of a dataset's guardians: ``guardians[i]`` holds piece i + 1."""

    dataset_id: int
    epoch: int
    guardians: tuple[str, ...]
    threshold: int
    fee_bps: int
    commitments: tuple[bytes, ...]

    def index_of(self, address: str) -> int:
        """The 1-based piece index ``address`` holds, 0 if none."""
        lowered = [g.lower() for g in self.guardians]
        return lowered.index(address.lower()) + 1 if address.lower() in lowered else 0


@dataclass(frozen=True, slots=True)
class PieceState:
    """What ``LicenseManager.piecesOf`` says: the epoch counted and the sets of piece indices."""

    epoch: int
    delivered: frozenset[int]
    revealed: frozenset[int]
    banned: frozenset[int]
    count: int
    complete: bool


@dataclass(frozen=True, slots=True)
class PieceDelivery:
    """One ``KeyPieceDelivered`` event."""

    license_id: int
    guardian: str
    epoch: int
    index: int
    sealed: delivery.Sealed
    block: int


def _bits(v: int) -> frozenset[int]:
    return frozenset(i + 1 for i in range(32) if v >> i & 1)


class GuardianCalls(Connection):
    """The ``KeyGuardians`` wrapper (mixed into :class:`contracts.chain.Chain`)."""

    def _need_guardians(self) -> None:
        if not self.deployment.key_guardians:
            raise errors.DeploymentError("this deployment has no KeyGuardians contract (deployed before issue 17)")

    async def register_guardian_key(self, operator: LocalAccount, key: bytes) -> None:
        """Announce ``operator``'s 32-byte X25519 guardian key (a staked operator only)."""
        self._need_guardians()
        await self.send(self.key_guardians.functions.registerGuardianKey(key), operator)

    async def guardian_key_of(self, operator: str) -> bytes:
        self._need_guardians()
        return bytes(await self.call(self.key_guardians.functions.guardianKeyOf(operator)))

    async def is_staked_operator(self, operator: str) -> bool:
        self._need_guardians()
        return bool(await self.call(self.key_guardians.functions.isStaked(operator)))

    async def guardian_candidates(self) -> dict[str, bytes]:
        """Operators that announced a guardian key and are staked now: address -> latest key."""
        self._need_guardians()
        logs = await self.event_logs.get(self.key_guardians, "GuardianKeyRegistered", await self.block_number())
        keys = {str(log["args"]["operator"]): bytes(log["args"]["key"]) for log in logs}
        return {a: k for a, k in keys.items() if await self.is_staked_operator(a)}

    async def set_guardians(
        self,
        owner: LocalAccount,
        dataset_id: int,
        guardians: list[str],
        threshold: int,
        commitments: list[bytes],
        sealed_pieces: list[bytes],
        fee_bps: int = 0,
    ) -> int:
        """Name a dataset's guardians; returns the new epoch."""
        self._need_guardians()
        fn = self.key_guardians.functions.setGuardians(
            dataset_id, guardians, threshold, commitments, sealed_pieces, fee_bps
        )
        receipt = await self.send(fn, owner)
        return int(self.tx.event(self.key_guardians, "GuardiansSet", receipt)["args"]["epoch"])

    async def guardian_epoch(self, dataset_id: int) -> int:
        if not self.deployment.key_guardians:
            return 0
        return int(await self.call(self.key_guardians.functions.epochOf(dataset_id)))

    async def guardian_set(self, dataset_id: int, epoch: int | None = None) -> GuardianSet | None:
        """The dataset's guardians of ``epoch`` (default: the current one); None if it has none."""
        epoch = await self.guardian_epoch(dataset_id) if epoch is None else epoch
        if epoch == 0:
            return None
        raw = await self.call(self.key_guardians.functions.getSet(dataset_id, epoch))
        guardians, commitments, threshold, fee_bps = raw
        return GuardianSet(
            dataset_id,
            epoch,
            tuple(str(g) for g in guardians),
            int(threshold),
            int(fee_bps),
            tuple(bytes(c) for c in commitments),
        )

    async def sealed_pieces(self, dataset_id: int, epoch: int) -> list[bytes]:
        """The pieces the owner sealed to each guardian of an epoch (from the GuardiansSet event)."""
        self._need_guardians()
        logs = await self.event_logs.get(
            self.key_guardians, "GuardiansSet", await self.block_number(), datasetId=dataset_id, epoch=epoch
        )
        if not logs:
            raise errors.ChainError(f"no GuardiansSet event for dataset {dataset_id} epoch {epoch}")
        return [bytes(b) for b in logs[-1]["args"]["sealedPieces"]]

    async def guardian_sets_changed(self, from_block: int, to_block: int) -> set[int]:
        """Datasets whose guardians were set in ``[from_block, to_block]`` (``GuardiansSet`` logs are
        kept by :attr:`event_logs`: each call reads only the blocks mined since the last)."""
        self._need_guardians()
        logs = await self.event_logs.get(self.key_guardians, "GuardiansSet", to_block)
        return {int(log["args"]["datasetId"]) for log in logs if int(log["blockNumber"]) >= from_block}

    async def guarded_datasets(self, guardian: str) -> dict[int, GuardianSet]:
        """Datasets whose current guardian set includes ``guardian``."""
        changed = await self.guardian_sets_changed(self.deployment.deployed_block, await self.block_number())
        out: dict[int, GuardianSet] = {}
        for ds in changed:
            current = await self.guardian_set(ds)
            if current is not None and current.index_of(guardian):
                out[ds] = current
        return out

    # --------------------------------------------------------------- LicenseManager ----

    async def may_release(self, license_id: int) -> bool:
        """LicenseManager.mayRelease: may a key or key piece be released for the license now?"""
        return bool(await self.call(self.licenses.functions.mayRelease(license_id)))

    async def deliver_key_piece(
        self, guardian: LocalAccount, license_id: int, index: int, sealed: delivery.Sealed
    ) -> TxReceipt:
        fn = self.licenses.functions.deliverKeyPiece(license_id, index, *sealed.to_abi())
        return await self.send(fn, guardian)

    async def license_pieces(self, license_id: int) -> PieceState:
        epoch, delivered, revealed, banned, count, complete = await self.call(
            self.licenses.functions.piecesOf(license_id)
        )
        return PieceState(int(epoch), _bits(delivered), _bits(revealed), _bits(banned), int(count), bool(complete))

    async def piece_deliveries(self, license_id: int, from_block: int | None = None) -> list[PieceDelivery]:
        """Every ``KeyPieceDelivered`` event of a license, in chain order."""
        logs = await self.licenses.events.KeyPieceDelivered().get_logs(
            from_block=self.deployment.deployed_block if from_block is None else from_block,
            to_block="latest",
            argument_filters={"licenseId": license_id},
        )
        logs = sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))
        return [
            PieceDelivery(
                license_id,
                str(a["guardian"]),
                int(a["epoch"]),
                int(a["index"]),
                delivery.Sealed(delivery.encode_point(int(a["rX"]), int(a["rY"])), bytes(a["sealedPiece"])),
                int(log["blockNumber"]),
            )
            for log in logs
            for a in [log["args"]]
        ]

    async def dispute_pieces(
        self,
        buyer: LocalAccount,
        license_id: int,
        secret: int,
        reveals: list[tuple[int, delivery.Sealed]],
        new_buyer_key: bytes,
    ) -> TxReceipt:
        """Reveal the license secret to prove delivered pieces bad (and rotate to ``new_buyer_key``)."""
        args = [(index, *sealed.to_abi()) for index, sealed in reveals]
        fn = self.licenses.functions.disputePieces(license_id, secret, args, delivery.check_point(new_buyer_key))
        return await self.send(fn, buyer)

    async def bad_pieces(self, guardian: str) -> int:
        return int(await self.call(self.licenses.functions.badPieces(guardian)))

    async def rejected_pieces(self, license_id: int) -> list[dict[str, Any]]:
        logs = await self.event_logs.get(
            self.licenses, "PieceRejected", await self.block_number(), licenseId=license_id
        )
        return [dict(log["args"]) for log in logs]

    async def license_buyer_keys(self, license_id: int) -> list[bytes]:
        """Every buyer key of a license: the purchase's, then each rotation's (the last is current)."""
        head = await self.block_number()
        logs = await self.event_logs.get(self.licenses, "LicensePurchased", head, licenseId=license_id)
        first = [delivery.encode_point(int(log["args"]["buyerKeyX"]), int(log["args"]["buyerKeyY"])) for log in logs]
        return first[-1:] + await self.rotated_buyer_keys(license_id)

    async def rotated_buyer_keys(self, license_id: int) -> list[bytes]:
        """The buyer keys a license moved to after piece disputes, oldest first."""
        logs = await self.event_logs.get(
            self.licenses, "BuyerKeyRotated", await self.block_number(), licenseId=license_id
        )
        return [delivery.encode_point(int(log["args"]["buyerKeyX"]), int(log["args"]["buyerKeyY"])) for log in logs]
