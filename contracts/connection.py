"""The connection under the chain client: an AsyncWeb3 provider, the datasov contracts bound to it,
the transactor, and construction (connect to a deployment, or deploy fresh contracts).

``await Chain.connect(url, deployment)`` talks to any EVM JSON-RPC endpoint (Hardhat in the
integration tests, a testnet or L2 in production); ``await Chain.deploy(url, deployer)`` puts fresh
contracts on one. Transactions go through :class:`contracts.tx.Transactor`: signed locally,
estimated first, receipts awaited with a timeout, reverts raised as named errors
(:mod:`contracts.errors`). The embedded dev chain is :mod:`contracts.devchain`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from eth_utils.address import to_checksum_address

import contracts

from . import errors, rpc
from .eventlogs import EventLogs
from .models import Deployment

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import AsyncWeb3
    from web3.types import TxReceipt

    from .tx import Transactor

# A bound contract: web3's AsyncContract, or a contracts.rpc.RpcContract on a reader; the wrappers
# use only what both have (``functions.f(*args).call()``, ``events.E().get_logs(...)``, ``address``).
Bound = Any

ETHER = 10**18
TOKEN = 10**18
DEFAULT_EPOCH_BLOCKS = 20
DEFAULT_DELIVERY_WINDOW = 3600
DEFAULT_DISPUTE_WINDOW = 3600
DEFAULT_MIN_STAKE = 100 * TOKEN
DEFAULT_SLASH = 10 * TOKEN
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """Constructor parameters of a fresh deployment."""

    epoch_blocks: int = DEFAULT_EPOCH_BLOCKS
    delivery_window: int = DEFAULT_DELIVERY_WINDOW
    dispute_window: int = DEFAULT_DISPUTE_WINDOW
    min_stake: int = DEFAULT_MIN_STAKE
    slash_amount: int = DEFAULT_SLASH


def _without_validation(w3: AsyncWeb3[Any]) -> None:
    """Drop web3's validation middleware: it asks the node for its chain id before every call and
    transaction (one more round trip per read; half the time of a read on the embedded chain). The
    chain id is checked once at connection, and every transaction is signed here for that id
    (EIP-155), so a node on another chain refuses it anyway."""
    if "validation" in {name for _, name in w3.middleware_onion.middleware}:
        w3.middleware_onion.remove("validation")


class Connection:
    """A chain connection with the datasov contracts bound (``registry``, ``licenses``,
    ``storage_market``, ``token``); the per-contract wrappers build on it.

    Two backends, one set of wrappers: an AsyncWeb3 connection (``connect``, ``deploy``, the embedded
    chain) sends transactions and reads through web3; a reader (:meth:`reader`, kind ``"reader"``)
    reads over raw JSON-RPC (:mod:`contracts.rpc`) without importing web3, and refuses to send.
    """

    def __init__(
        self,
        w3: AsyncWeb3[Any] | None,
        deployment: Deployment,
        *,
        kind: str,
        receipt_timeout: float = 60.0,
        transport: rpc.HttpTransport | None = None,
    ) -> None:
        self._w3 = w3
        self._transport = transport
        self.deployment = deployment
        self.kind = kind  # "embedded", "rpc" or "reader"
        self._tx: Transactor | None = None
        if w3 is not None:
            from .tx import Transactor

            _without_validation(w3)
            self._tx = Transactor(w3, receipt_timeout=receipt_timeout)
        elif transport is None:
            raise ValueError("a connection needs web3 or a JSON-RPC transport")
        self.event_logs = EventLogs(deployment.deployed_block)  # lookups read only blocks mined since the last
        self.registry = self._bind("DatasetRegistry", deployment.registry)
        self.licenses = self._bind("LicenseManager", deployment.license_manager)
        self.storage_market = self._bind("StorageMarket", deployment.storage_market)
        self.key_guardians = self._bind("KeyGuardians", deployment.key_guardians or ZERO_ADDRESS)
        self.token = self._bind("TestToken", deployment.token)

    @property
    def w3(self) -> AsyncWeb3[Any]:
        if self._w3 is None:
            raise errors.ReadOnlyConnection("this chain connection only reads (open it with Chain.connect to send)")
        return self._w3

    @property
    def tx(self) -> Transactor:
        if self._tx is None:
            raise errors.ReadOnlyConnection("this chain connection only reads (open it with Chain.connect to send)")
        return self._tx

    async def send(self, fn: Any, sender: LocalAccount, *, gas: int | None = None) -> TxReceipt:
        """Estimate, sign locally, send and await the receipt (:meth:`contracts.tx.Transactor.send`)."""
        return await self.tx.send(fn, sender, gas=gas)

    async def call(self, fn: Any) -> Any:
        """Read-only call; reverts become named errors (on a reader, :class:`contracts.rpc.RpcFunction` names them)."""
        if self._tx is not None:
            return await self._tx.call(fn)
        return await fn.call()

    async def close(self) -> None:
        """Close the JSON-RPC connection (no-op for the embedded chain)."""
        if self._transport is not None:
            await self._transport.close()
        if self.kind == "rpc":
            await self.w3.provider.disconnect()

    def _bind(self, name: str, address: str) -> Bound:
        abi = contracts.load(name).abi
        if self._w3 is None:
            assert self._transport is not None
            return rpc.RpcContract(self._transport, name, address, abi)
        return self._w3.eth.contract(address=to_checksum_address(address), abi=abi)

    # ---------------------------------------------------------------- construction ----

    @classmethod
    async def connect(cls, rpc_url: str, deployment: Deployment, *, receipt_timeout: float = 60.0) -> Self:
        """Use contracts already deployed on any EVM JSON-RPC endpoint."""
        from web3 import AsyncWeb3

        w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        try:
            try:
                chain_id = await w3.eth.chain_id
            except Exception as err:
                raise errors.ChainUnavailable(f"cannot reach {rpc_url}: {err}") from err
            if chain_id != deployment.chain_id:
                raise errors.DeploymentError(
                    f"{rpc_url} is chain {chain_id}, the deployment is for {deployment.chain_id}"
                )
            addresses = (deployment.registry, deployment.license_manager, deployment.storage_market)
            for address in addresses + ((deployment.key_guardians,) if deployment.key_guardians else ()):
                if not await w3.eth.get_code(to_checksum_address(address)):
                    raise errors.DeploymentError(f"no contract at {address} on {rpc_url}")
        except BaseException:
            await w3.provider.disconnect()  # a failed connect leaves no HTTP session behind (a caller may retry)
            raise
        return cls(w3, deployment, kind="rpc", receipt_timeout=receipt_timeout)

    @classmethod
    async def reader(cls, rpc_url: str, deployment: Deployment, *, request_timeout: float = 30.0) -> Self:
        """Read contracts already deployed on a JSON-RPC endpoint, without web3 (see :mod:`contracts.rpc`):
        for commands that only read. Checks the chain id and the contracts' code, as :meth:`connect` does."""
        transport = rpc.HttpTransport(rpc_url, timeout=request_timeout)
        try:  # the chain id and every contract's code asked at once: one round trip, not five
            addresses = [deployment.registry, deployment.license_manager, deployment.storage_market]
            addresses += [deployment.key_guardians] if deployment.key_guardians else []
            chain_id, *codes = await asyncio.gather(
                rpc.chain_id(transport), *(rpc.get_code(transport, address) for address in addresses)
            )
            if chain_id != deployment.chain_id:
                raise errors.DeploymentError(
                    f"{rpc_url} is chain {chain_id}, the deployment is for {deployment.chain_id}"
                )
            for address, code in zip(addresses, codes, strict=True):
                if not code:
                    raise errors.DeploymentError(f"no contract at {address} on {rpc_url}")
        except BaseException:
            await transport.close()
            raise
        return cls(None, deployment, kind="reader", transport=transport)

    @classmethod
    async def deploy(cls, rpc_url: str, deployer: LocalAccount, *, config: ChainConfig = ChainConfig()) -> Self:
        """Deploy fresh contracts on a JSON-RPC endpoint (the deployer must hold ETH)."""
        from web3 import AsyncWeb3

        w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        try:
            await w3.eth.chain_id
        except Exception as err:
            raise errors.ChainUnavailable(f"cannot reach {rpc_url}: {err}") from err
        return await cls._deploy(w3, deployer, config, kind="rpc")

    @classmethod
    async def _deploy(cls, w3: AsyncWeb3[Any], deployer: LocalAccount, config: ChainConfig, *, kind: str) -> Self:
        from .tx import Transactor

        tx = Transactor(w3)
        start = await w3.eth.block_number
        token = await tx.create("TestToken", deployer)
        registry = await tx.create("DatasetRegistry", deployer)
        # the StorageMarket first: licensing asks it whether a dataset is servable
        storage_market = await tx.create(
            "StorageMarket", deployer, registry, token, config.min_stake, config.slash_amount, config.epoch_blocks
        )
        # the market may register a dataset for its owner inside that owner's transaction (registerAndCommit)
        bound = w3.eth.contract(address=to_checksum_address(registry), abi=contracts.load("DatasetRegistry").abi)
        await tx.send(bound.functions.setMarket(storage_market), deployer)
        guardians = await tx.create("KeyGuardians", deployer, registry, storage_market)
        licenses = await tx.create(
            "LicenseManager",
            deployer,
            registry,
            storage_market,
            guardians,
            config.delivery_window,
            config.dispute_window,
        )
        data_pools = await tx.create("DataPools", deployer, registry, licenses, storage_market)
        deployment = Deployment(
            chain_id=await w3.eth.chain_id,
            registry=registry,
            license_manager=licenses,
            storage_market=storage_market,
            token=token,
            deployed_block=start,
            epoch_blocks=config.epoch_blocks,
            delivery_window=config.delivery_window,
            dispute_window=config.dispute_window,
            key_guardians=guardians,
            data_pools=data_pools,
        )
        return cls(w3, deployment, kind=kind)

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        if self._transport is not None:
            return await self._transport.request(method, params)
        response = await self.w3.provider.make_request(method, params)
        if "error" in response:
            raise errors.ChainError(f"{method}: {response['error']}")
        return response.get("result")

    async def index_logs(self) -> None:
        """Embedded chain: index the logs of blocks mined since the last call (cheap while they are
        recent; see :mod:`contracts.logindex`). Call it as blocks are mined by a long-running devnet."""
        if self.kind == "embedded":
            await self.w3.eth.get_logs({"fromBlock": "latest", "toBlock": "latest"})

    async def block_number(self) -> int:
        if self._transport is not None:
            return await rpc.block_number(self._transport)
        return int(await self.w3.eth.block_number)

    async def get_block(self, block: int | str = "latest") -> dict[str, Any]:
        """A block's ``number``, ``timestamp`` and ``hash`` (and ``baseFeePerGas`` where it has one)."""
        if self._transport is not None:
            return await rpc.get_block(self._transport, block)
        return dict(await self.w3.eth.get_block(block))  # type: ignore[arg-type]  # a tag or a number

    async def timestamp(self) -> int:
        return int((await self.get_block("latest"))["timestamp"])

    # ------------------------------------------------------------------------- token ----

    async def send_eth(self, sender: LocalAccount, to: str, amount: int) -> None:
        await self.tx.transfer(sender, to, amount)

    async def eth_balance(self, address: str) -> int:
        if self._transport is not None:
            return await rpc.get_balance(self._transport, address)
        return int(await self.w3.eth.get_balance(to_checksum_address(address)))

    async def mint(self, sender: LocalAccount, to: str, amount: int) -> None:
        await self.send(self.token.functions.mint(to, amount), sender)

    async def approve(self, owner: LocalAccount, spender: str, amount: int) -> None:
        await self.send(self.token.functions.approve(spender, amount), owner)

    async def balance_of(self, address: str) -> int:
        return int(await self.call(self.token.functions.balanceOf(address)))
