"""datasov's Solidity contracts: sources in ``src/``, compiled artifacts in ``artifacts/``.

The artifacts (ABI + bytecode, from ``npm --prefix contracts run build`` with the solc and
OpenZeppelin versions pinned in ``package.json``) are committed, so Python needs no compiler;
CI recompiles and fails if they differ from the sources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

ARTIFACTS = (
    "DatasetRegistry",
    "LicenseManager",
    "KeyGuardians",
    "StorageMarket",
    "DataPools",
    "TestToken",
    "ReentrantToken",
    "MerkleHarness",
    "RevealedLeavesHarness",
    "PoolFiller",
)


class ArtifactNotFound(LookupError):
    """No compiled artifact by that name (run ``npm --prefix contracts run build``)."""


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    compiler: str


@cache
def load(name: str) -> Artifact:
    """The compiled contract ``name`` (e.g. "LicenseManager")."""
    path = resources.files(__name__) / "artifacts" / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ArtifactNotFound(f"no artifact {name!r} in contracts/artifacts") from err
    return Artifact(name, raw["abi"], raw["bytecode"], raw["compiler"]["version"])
