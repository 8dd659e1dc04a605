"""The async chain client: one :class:`Chain` over any EVM JSON-RPC endpoint (or the embedded dev
chain, :mod:`contracts.devchain`), with typed wrappers for every datasov contract.

    Chain
    ├── contracts.registry.RegistryCalls   DatasetRegistry
    ├── contracts.licenses.LicenseCalls    LicenseManager
    ├── contracts.storage.StorageCalls     StorageMarket: stakes, deals, proofs, fees
    ├── contracts.operators.OperatorCalls  StorageMarket: announcements, leaving
    ├── contracts.guardians.GuardianCalls  KeyGuardians, and LicenseManager's guardian path
    ├── contracts.pools.PoolCalls          DataPools
    └── contracts.connection.Connection    web3, bound contracts, transactor, token, connect/deploy

Errors are :mod:`contracts.errors` (every revert is the named class of its Solidity custom error).
"""

from __future__ import annotations

from .connection import ChainConfig, Connection
from .guardians import GuardianCalls
from .licenses import LicenseCalls
from .operators import OperatorCalls
from .pools import PoolCalls
from .registry import RegistryCalls
from .reverts import decode_revert
from .storage import StorageCalls

__all__ = ["Chain", "ChainConfig", "Connection", "decode_revert"]


class Chain(GuardianCalls, LicenseCalls, RegistryCalls, StorageCalls, OperatorCalls, PoolCalls):
    """An AsyncWeb3 connection with the datasov contracts bound and typed wrappers for them."""
