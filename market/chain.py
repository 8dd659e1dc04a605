"""The async chain client: one ``Chain`` over an embedded EVM or any JSON-RPC endpoint.

``await Chain.embedded()`` starts an in-process EVM (eth-tester / py-evm), funds deterministic dev
accounts and deploys the contracts: no server needed. ``await Chain.connect(url, deployment,
accounts)`` talks to any EVM JSON-RPC endpoint (Hardhat in the integration tests, a testnet or L2
in production); ``await Chain.deploy(url, deployer)`` puts fresh contracts on one.

Transactions go through :class:`market.tx.Transactor`: signed locally, estimated first, receipts
awaited with a timeout, reverts raised as named errors (:mod:`market.errors`).
``mine``/``advance_time`` drive local chains in tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth.vm.forks.cancun import CancunVM
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils.address import to_checksum_address
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.providers.eth_tester import AsyncEthereumTesterProvider
from web3.types import TxReceipt

import contracts

from . import delivery, errors
from .logindex import LogIndex, LogIndexMiddleware
from .models import Dataset, Deal, Deployment, License, LicenseStatus, Operator, Share, StorageProof
from .terms import LicenseTerms, Purpose
from .tx import Transactor, decode_revert

__all__ = ["Chain", "ChainConfig", "decode_revert", "dev_account"]

ETHER = 10**18
TOKEN = 10**18
DEFAULT_EPOCH_BLOCKS = 20
DEFAULT_DELIVERY_WINDOW = 3600
DEFAULT_DISPUTE_WINDOW = 3600
DEFAULT_MIN_STAKE = 100 * TOKEN
DEFAULT_SLASH = 10 * TOKEN
DEV_FUNDS_ETH = 1000 * ETHER
DEV_FUNDS_TOKEN = 1_000_000 * TOKEN


def dev_account(i: int) -> LocalAccount:
    """Deterministic development account ``i`` (never use these keys for anything of value)."""
    key = hashlib.sha256(b"datasov-dev-account-%d" % i).digest()
    account: LocalAccount = Account.from_key(key)
    return account


@dataclass(frozen=True, slots=True)
class ChainConfig:
    epoch_blocks: int = DEFAULT_EPOCH_BLOCKS
    delivery_window: int = DEFAULT_DELIVERY_WINDOW
    dispute_window: int = DEFAULT_DISPUTE_WINDOW
    min_stake: int = DEFAULT_MIN_STAKE
    slash_amount: int = DEFAULT_SLASH


# ------------------------------------------------------------------------- the client ----


class Chain:
    """An AsyncWeb3 connection with the datasov contracts bound and typed wrappers for them."""

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        deployment: Deployment,
        *,
        kind: str,
        receipt_timeout: float = 60.0,
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.kind = kind  # "embedded" or "rpc"
        self.tx = Transactor(w3, receipt_timeout=receipt_timeout)
        self.send = self.tx.send
        self.call = self.tx.call
        self.registry = self._bind("DatasetRegistry", deployment.registry)
        self.licenses = self._bind("LicenseManager", deployment.license_manager)
        self.market = self._bind("StorageMarket", deployment.storage_market)
        self.token = self._bind("TestToken", deployment.token)

    async def close(self) -> None:
        """Close the JSON-RPC connection (no-op for the embedded chain)."""
        if self.kind == "rpc":
            await self.w3.provider.disconnect()

    def _bind(self, name: str, address: str) -> AsyncContract:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=contracts.load(name).abi)

    # ---------------------------------------------------------------- construction ----

    @classmethod
    async def embedded(cls, *, dev_accounts: int = 12, config: ChainConfig = ChainConfig()) -> Chain:
        """A fresh in-process EVM with contracts deployed and ``dev_accounts`` funded accounts
        (``dev_account(0)`` deployed the contracts; every account holds test tokens)."""
        provider = AsyncEthereumTesterProvider()
        # The same fork as the compiler target and the Hardhat node (contracts/hardhat.config.js),
        # so gas and opcodes match across the embedded chain, Hardhat and production.
        provider.ethereum_tester = EthereumTester(backend=PyEVMBackend(vm_configuration=((0, CancunVM),)))
        provider.log_index = LogIndex()  # type: ignore[attr-defined]
        w3 = AsyncWeb3(provider)
        w3.middleware_onion.add(LogIndexMiddleware)
        tester = provider.ethereum_tester
        coinbase = tester.get_accounts()[0]
        for i in range(dev_accounts):
            acct = dev_account(i)
            tester.add_account(acct.key.hex())
            tester.send_transaction(
                {"from": coinbase, "to": acct.address, "value": DEV_FUNDS_ETH, "gas": 21000, "gas_price": 10**9}
            )
        chain = await cls._deploy(w3, dev_account(0), config, kind="embedded")
        await chain.fund_dev_accounts(dev_accounts)
        return chain

    @classmethod
    async def connect(cls, rpc_url: str, deployment: Deployment, *, receipt_timeout: float = 60.0) -> Chain:
        """Use contracts already deployed on any EVM JSON-RPC endpoint."""
        w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        try:
            chain_id = await w3.eth.chain_id
        except Exception as err:
            raise errors.ChainUnavailable(f"cannot reach {rpc_url}: {err}") from err
        if chain_id != deployment.chain_id:
            raise errors.DeploymentError(f"{rpc_url} is chain {chain_id}, the deployment is for {deployment.chain_id}")
        for address in (deployment.registry, deployment.license_manager, deployment.storage_market):
            if not await w3.eth.get_code(to_checksum_address(address)):
                raise errors.DeploymentError(f"no contract at {address} on {rpc_url}")
        return cls(w3, deployment, kind="rpc", receipt_timeout=receipt_timeout)

    @classmethod
    async def deploy(cls, rpc_url: str, deployer: LocalAccount, *, config: ChainConfig = ChainConfig()) -> Chain:
        """Deploy fresh contracts on a JSON-RPC endpoint (the deployer must hold ETH)."""
        w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        try:
            await w3.eth.chain_id
        except Exception as err:
            raise errors.ChainUnavailable(f"cannot reach {rpc_url}: {err}") from err
        return await cls._deploy(w3, deployer, config, kind="rpc")

    async def fund_dev_accounts(self, count: int, *, eth: int = DEV_FUNDS_ETH, tokens: int = DEV_FUNDS_TOKEN) -> None:
        """Give dev accounts ETH (Hardhat's ``hardhat_setBalance``) and test tokens (local chains only)."""
        for i in range(count):
            address = dev_account(i).address
            if self.kind == "rpc":
                await self._rpc("hardhat_setBalance", [address, hex(eth)])
            await self.mint(dev_account(0), address, tokens)

    @classmethod
    async def _deploy(cls, w3: AsyncWeb3[Any], deployer: LocalAccount, config: ChainConfig, *, kind: str) -> Chain:
        tx = Transactor(w3)
        start = await w3.eth.block_number
        token = await tx.create("TestToken", deployer)
        registry = await tx.create("DatasetRegistry", deployer)
        # the market first: licensing asks it whether a dataset is servable
        market = await tx.create(
            "StorageMarket", deployer, registry, token, config.min_stake, config.slash_amount, config.epoch_blocks
        )
        licenses = await tx.create(
            "LicenseManager", deployer, registry, market, config.delivery_window, config.dispute_window
        )
        deployment = Deployment(
            chain_id=await w3.eth.chain_id,
            registry=registry,
            license_manager=licenses,
            storage_market=market,
            token=token,
            deployed_block=start,
            epoch_blocks=config.epoch_blocks,
            delivery_window=config.delivery_window,
            dispute_window=config.dispute_window,
        )
        return cls(w3, deployment, kind=kind)

    # ------------------------------------------------------------------- local chains ----

    async def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks (embedded chain or Hardhat)."""
        if self.kind == "embedded":
            tester = self.w3.provider.ethereum_tester
            tester.mine_blocks(blocks)
        else:
            await self._rpc("hardhat_mine", [hex(blocks)])

    async def advance_time(self, seconds: int) -> None:
        """Move the chain clock forward and mine a block at the new time."""
        if self.kind == "embedded":
            tester = self.w3.provider.ethereum_tester
            latest = await self.w3.eth.get_block("latest")
            target = int(latest["timestamp"]) + seconds
            tester.time_travel(target)
            if await self.timestamp() < target:  # eth-tester stamps the travelling block a second early
                tester.mine_blocks(1)
        else:
            await self._rpc("evm_increaseTime", [seconds])
            await self._rpc("evm_mine", [])

    async def snapshot(self) -> Any:
        """Remember the chain state (local chains only); see :meth:`revert`."""
        if self.kind == "embedded":
            return self.w3.provider.ethereum_tester.take_snapshot()
        return await self._rpc("evm_snapshot", [])

    async def revert(self, snapshot: Any) -> None:
        """Go back to a snapshot; the nonce cache is dropped with it."""
        if self.kind == "embedded":
            self.w3.provider.ethereum_tester.revert_to_snapshot(snapshot)
            self.w3.provider.log_index.clear()  # the blocks after the snapshot are gone
        else:
            await self._rpc("evm_revert", [snapshot])
        self.tx.forget_nonces()

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        response = await self.w3.provider.make_request(method, params)
        if "error" in response:
            raise errors.ChainError(f"{method}: {response['error']}")
        return response.get("result")

    async def index_logs(self) -> None:
        """Embedded chain: index the logs of blocks mined since the last call (cheap while they are
        recent; see :mod:`market.logindex`). Call it as blocks are mined by a long-running devnet."""
        if self.kind == "embedded":
            await self.w3.eth.get_logs({"fromBlock": "latest", "toBlock": "latest"})

    async def block_number(self) -> int:
        return int(await self.w3.eth.block_number)

    async def timestamp(self) -> int:
        return int((await self.w3.eth.get_block("latest"))["timestamp"])

    # ------------------------------------------------------------------------- token ----

    async def send_eth(self, sender: LocalAccount, to: str, amount: int) -> None:
        await self.tx.transfer(sender, to, amount)

    async def eth_balance(self, address: str) -> int:
        return int(await self.w3.eth.get_balance(to_checksum_address(address)))

    async def mint(self, sender: LocalAccount, to: str, amount: int) -> None:
        await self.send(self.token.functions.mint(to, amount), sender)

    async def approve(self, owner: LocalAccount, spender: str, amount: int) -> None:
        await self.send(self.token.functions.approve(spender, amount), owner)

    async def balance_of(self, address: str) -> int:
        return int(await self.call(self.token.functions.balanceOf(address)))

    # ---------------------------------------------------------------------- registry ----

    async def register_dataset(
        self,
        owner: LocalAccount,
        *,
        manifest_hash: bytes,
        commitment_root: bytes,
        key_commitment: bytes,
        key_salt: bytes,
        plaintext_size: int,
        share_size: int,
        leaf_size: int,
        k: int,
        n: int,
        price: int,
        terms: LicenseTerms,
        payment_token: str | None = None,
        key_agent: str | None = None,
    ) -> int:
        """Register a dataset; returns its id."""
        registration = (
            manifest_hash,
            commitment_root,
            key_commitment,
            key_salt,
            plaintext_size,
            share_size,
            leaf_size,
            k,
            n,
            price,
            payment_token or self.deployment.token,
            key_agent or "0x" + "00" * 20,
        )
        receipt = await self.send(self.registry.functions.register(registration, terms.to_abi()), owner)
        event = self.tx.event(self.registry, "DatasetRegistered", receipt)
        return int(event["args"]["datasetId"])

    async def update_offer(
        self, owner: LocalAccount, dataset_id: int, *, price: int, terms: LicenseTerms, payment_token: str | None = None
    ) -> None:
        fn = self.registry.functions.updateOffer(
            dataset_id, price, payment_token or self.deployment.token, terms.to_abi()
        )
        await self.send(fn, owner)

    async def set_key_agent(self, owner: LocalAccount, dataset_id: int, agent: str) -> None:
        await self.send(self.registry.functions.setKeyAgent(dataset_id, agent), owner)

    async def transfer_dataset_ownership(self, owner: LocalAccount, dataset_id: int, new_owner: str) -> None:
        """Offer the dataset to ``new_owner`` (it takes effect when that account accepts)."""
        await self.send(self.registry.functions.transferDatasetOwnership(dataset_id, new_owner), owner)

    async def accept_dataset_ownership(self, new_owner: LocalAccount, dataset_id: int) -> None:
        """Take over a dataset offered to this account; the old key agent is dropped."""
        await self.send(self.registry.functions.acceptDatasetOwnership(dataset_id), new_owner)

    async def pending_dataset_owner(self, dataset_id: int) -> str:
        return str(await self.call(self.registry.functions.pendingOwnerOf(dataset_id)))

    async def dataset_by_manifest(self, registrant: str, manifest_hash: bytes) -> int:
        """The dataset ``registrant`` registered with this manifest hash (0 if none)."""
        return int(await self.call(self.registry.functions.datasetByManifest(registrant, manifest_hash)))

    async def get_dataset(self, dataset_id: int) -> Dataset:
        return Dataset.from_abi(dataset_id, await self.call(self.registry.functions.getDataset(dataset_id)))

    async def get_terms(self, dataset_id: int) -> LicenseTerms:
        return LicenseTerms.from_abi(await self.call(self.registry.functions.getTerms(dataset_id)))

    async def dataset_count(self) -> int:
        return int(await self.call(self.registry.functions.datasetCount()))

    # ---------------------------------------------------------------------- licenses ----

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
        ``buyer_key`` is the buyer's 64-byte BN254 point (:mod:`market.delivery`). Returns the id."""
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

    async def blocks_at(self, timestamp: int) -> tuple[int, int]:
        """The blocks mined at ``timestamp`` (first, last), found by bisection over block times; a
        record's time stamp (purchase, delivery...) then narrows a log query to a few blocks."""

        async def first_after(t: int) -> int:  # first block with timestamp > t
            lo, hi = self.deployment.deployed_block, await self.block_number() + 1
            while lo < hi:
                mid = (lo + hi) // 2
                if int((await self.w3.eth.get_block(mid))["timestamp"]) > t:
                    hi = mid
                else:
                    lo = mid + 1
            return lo

        return await first_after(timestamp - 1), await first_after(timestamp) - 1

    async def _license_logs(self, name: str, license_id: int, at: int | None) -> list[Any]:
        start, end = (self.deployment.deployed_block, "latest") if not at else await self.blocks_at(at)
        event = getattr(self.licenses.events, name)()
        logs: list[Any] = await event.get_logs(
            from_block=start, to_block=end, argument_filters={"licenseId": license_id}
        )
        return logs

    async def delivery(self, license_id: int) -> delivery.Sealed | None:
        """What was delivered for a license (from the KeyDelivered event), if anything."""
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
                block = await self.w3.eth.get_block(log["blockNumber"])
                out[name] = {
                    "tx": "0x" + bytes(log["transactionHash"]).hex(),
                    "block": int(log["blockNumber"]),
                    "block_hash": "0x" + bytes(block["hash"]).hex(),
                    "time": int(block["timestamp"]),
                }
        return out

    # ------------------------------------------------------------------------ storage ----

    async def register_operator(self, operator: LocalAccount, stake: int) -> None:
        await self.approve(operator, self.deployment.storage_market, stake)
        await self.send(self.market.functions.registerOperator(stake), operator)

    async def add_stake(self, operator: LocalAccount, amount: int) -> None:
        await self.approve(operator, self.deployment.storage_market, amount)
        await self.send(self.market.functions.addStake(amount), operator)

    async def withdraw_stake(self, operator: LocalAccount, amount: int) -> None:
        await self.send(self.market.functions.withdrawStake(amount), operator)

    async def get_operator(self, address: str) -> Operator:
        t = await self.call(self.market.functions.getOperator(address))
        return Operator(int(t[0]), int(t[1]), bool(t[2]))

    async def open_deal(
        self, owner: LocalAccount, dataset_id: int, providers: Sequence[str], *, epochs: int, fee_per_share_epoch: int
    ) -> int:
        escrow = len(providers) * epochs * fee_per_share_epoch
        if escrow:
            await self.approve(owner, self.deployment.storage_market, escrow)
        fn = self.market.functions.openDeal(dataset_id, list(providers), epochs, fee_per_share_epoch)
        receipt = await self.send(fn, owner)
        event = self.tx.event(self.market, "DealOpened", receipt)
        return int(event["args"]["dealId"])

    async def accept_share(self, provider: LocalAccount, deal_id: int, share_index: int) -> None:
        await self.send(self.market.functions.acceptShare(deal_id, share_index), provider)

    async def prove_storage(self, provider: LocalAccount, proof: StorageProof) -> TxReceipt:
        return await self.send(self.market.functions.proveStorage(proof.to_abi()), provider)

    async def prove_storage_batch(self, provider: LocalAccount, proofs: Sequence[StorageProof]) -> TxReceipt:
        return await self.send(self.market.functions.proveStorageBatch([p.to_abi() for p in proofs]), provider)

    async def report_missed_proof(self, reporter: LocalAccount, deal_id: int, share_index: int, epoch: int) -> None:
        await self.send(self.market.functions.reportMissedProof(deal_id, share_index, epoch), reporter)

    async def claim_fees(self, caller: LocalAccount, deal_id: int, share_index: int) -> None:
        """Move a share's earned fees to its provider's withdrawable balance."""
        await self.send(self.market.functions.claimFees(deal_id, share_index), caller)

    async def replace_provider(self, owner: LocalAccount, deal_id: int, share_index: int, new_provider: str) -> None:
        await self.send(self.market.functions.replaceProvider(deal_id, share_index, new_provider), owner)

    async def terminate_deal(self, owner: LocalAccount, deal_id: int) -> None:
        await self.send(self.market.functions.terminateDeal(deal_id), owner)

    async def settle_deal(self, caller: LocalAccount, deal_id: int) -> None:
        await self.send(self.market.functions.settleDeal(deal_id), caller)

    async def withdraw(self, account: LocalAccount) -> None:
        await self.send(self.market.functions.withdraw(), account)

    async def market_balance(self, address: str) -> int:
        return int(await self.call(self.market.functions.balances(address)))

    async def deals_of(self, *, dataset_id: int | None = None, owner: str | None = None) -> list[int]:
        """Ids of the deals opened for a dataset and/or by an owner, oldest first."""
        filters: dict[str, Any] = {}
        if dataset_id is not None:
            filters["datasetId"] = dataset_id
        if owner is not None:
            filters["owner"] = owner
        logs = await self.market.events.DealOpened().get_logs(
            from_block=self.deployment.deployed_block, argument_filters=filters
        )
        return [int(log["args"]["dealId"]) for log in logs]

    async def get_deal(self, deal_id: int) -> Deal:
        return Deal.from_abi(deal_id, await self.call(self.market.functions.getDeal(deal_id)))

    async def is_servable(self, dataset_id: int) -> bool:
        """Does the dataset have an open deal with at least k accepted, non-faulty shares?"""
        return bool(await self.call(self.market.functions.isServable(dataset_id)))

    async def healthy_shares(self, deal_id: int) -> int:
        """Shares of the deal accepted by their provider and not faulty (0 once settled)."""
        return int(await self.call(self.market.functions.healthyShares(deal_id)))

    async def get_share(self, deal_id: int, share_index: int) -> Share:
        t = await self.call(self.market.functions.getShare(deal_id, share_index))
        return Share(str(t[0]), int(t[1]), int(t[2]), int(t[3]), bool(t[4]), bool(t[5]))

    async def current_epoch(self) -> int:
        return int(await self.call(self.market.functions.currentEpoch()))

    async def epoch_start_block(self, epoch: int) -> int:
        return int(await self.call(self.market.functions.epochStartBlock(epoch)))

    async def challenge_leaf(self, deal_id: int, share_index: int, epoch: int) -> int:
        return int(await self.call(self.market.functions.challengeLeaf(deal_id, share_index, epoch)))

    async def is_proven(self, deal_id: int, share_index: int, epoch: int) -> bool:
        return bool(await self.call(self.market.functions.isProven(deal_id, share_index, epoch)))

    async def is_due(self, deal_id: int, share_index: int, epoch: int) -> bool:
        return bool(await self.call(self.market.functions.isDue(deal_id, share_index, epoch)))

    async def advance_to_epoch(self, epoch: int, *, offset: int = 1) -> None:
        """Mine until the chain is ``offset`` blocks into ``epoch`` (offset >= 1: the seed is readable)."""
        target = await self.epoch_start_block(epoch) + offset
        now = await self.block_number()
        if target > now:
            await self.mine(target - now)
