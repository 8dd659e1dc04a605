"""The async chain client: one :class:`Chain` over any EVM JSON-RPC endpoint (or the embedded dev
chain, :mod:`contracts.devchain`), with typed wrappers for every datasov contract.

    Chain
    ├── contracts.registry.RegistryCalls   DatasetRegistry
    ├── contracts.licenses.LicenseCalls    LicenseManager
    ├── contracts.storage.StorageCalls     StorageMarket: stakes, deals, proofs, fees
    ├── contracts.operators.OperatorCalls  StorageMarket: announcements, leaving
    └── contracts.connection.Connection    web3, bound contracts, transactor, token, connect/deploy

Errors are :mod:`contracts.errors` (every revert is the named class of its Solidity custom error).
"""

from __future__ import annotations

from .connection import ChainConfig, Connection
from .licenses import LicenseCalls
from .operators import OperatorCalls
from .registry import RegistryCalls
from .storage import StorageCalls
from .tx import decode_revert

__all__ = ["Chain", "ChainConfig", "Connection", "decode_revert"]


class Chain(LicenseCalls, RegistryCalls, StorageCalls, OperatorCalls):
    """An AsyncWeb3 connection with the datasov contracts bound and typed wrappers for them."""
