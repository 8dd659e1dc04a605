"""Which network a home talks to: ``HOME/config.json``, read without loading a chain client.

``datasov init`` writes it, in the same format ``datasov devnet up`` writes to ``devnet.json``::

    {"version": 1, "rpc": "http://127.0.0.1:8545", "deployment": {...}, "bootstrap": ["/ip4/.../p2p/..."]}

Nodes are found on the chain (:class:`market.chain_directory.ChainDirectory`, bound by
``datasov.cli.context.open_chain``); a ``nodes`` list in an older file is read but not used while a
chain is open. The CLI (:mod:`datasov.cli.context`) and :mod:`datasov.fsspec` both read it from here:
this module imports neither click nor web3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import errors
from contracts.models import Deployment
from market.directory import Directory, DirectoryError, StaticDirectory

CONFIG = "config.json"
MACHINE_SECRET = "machine.secret"  # noqa: S105 - a file name, not a secret


class NetworkConfigError(ValueError):
    """``HOME/config.json`` is missing or malformed (``missing`` says which)."""

    def __init__(self, message: str, *, path: Path, missing: bool) -> None:
        super().__init__(message)
        self.path = path
        self.missing = missing


@dataclass
class Network:
    rpc: str
    deployment: Deployment
    directory: Directory  # the chain's view once a chain is open; before, an old file's list
    bootstrap: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Network:
        if obj.get("version") != 1 or not obj.get("rpc"):
            raise errors.DeploymentError("network config must have version 1 and an rpc URL")
        bootstrap = obj.get("bootstrap") or []
        if not isinstance(bootstrap, list) or not all(isinstance(b, str) for b in bootstrap):
            raise errors.DeploymentError("bootstrap must be a list of multiaddrs")
        return cls(
            str(obj["rpc"]),
            Deployment.from_json(obj["deployment"]),
            StaticDirectory.from_json(obj.get("nodes") or []),
            tuple(bootstrap),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "rpc": self.rpc,
            "deployment": self.deployment.to_json(),
            "bootstrap": list(self.bootstrap),
        }


def read_network(home: Path, rpc: str | None = None) -> Network:
    """The home's network (``rpc``, if given, replaces its JSON-RPC URL); :class:`NetworkConfigError`
    if there is none or it is malformed."""
    path = home / CONFIG
    if not path.exists():
        raise NetworkConfigError(f"{home} has no network config", path=path, missing=True)
    try:
        network = Network.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError, errors.DeploymentError, DirectoryError) as err:
        raise NetworkConfigError(f"{path} is malformed: {err}", path=path, missing=False) from err
    if rpc:
        network.rpc = rpc
    return network
