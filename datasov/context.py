"""What every market command needs: the home directory, the network it talks to, the keystore.

``HOME/config.json`` (written by ``datasov init``) says which network: a JSON-RPC URL, the contract
deployment and a node directory, in the same format ``datasov devnet up`` writes to ``devnet.json``::

    {"version": 1, "rpc": "http://127.0.0.1:8545", "deployment": {...}, "nodes": [{"address", "url"}]}

The keystore passphrase comes from, in order: ``--passphrase-file``, ``DATASOV_PASSPHRASE``, the
machine secret ``HOME/machine.secret`` (made by ``datasov init --no-passphrase``; 0600), a prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from contracts import errors
from contracts.chain import Chain
from contracts.models import Deployment
from erasure.errors import ErasureError, IntegrityError, NotEnoughShares
from market import buyer
from market.directory import DirectoryError, StaticDirectory
from market.errors import MarketError
from market.keystore import Keystore, KeystoreError, WrongPassphrase
from storage_node.errors import NodeError

from .ui import fail

T = TypeVar("T")
CONFIG = "config.json"
MACHINE_SECRET = "machine.secret"  # noqa: S105 - a file name, not a secret
DEFAULT_HOME = Path(os.environ.get("DATASOV_HOME", Path.home() / ".datasov"))

# exit codes (documented in `datasov --help`)
EXIT_ERROR = 1
EXIT_UNAVAILABLE = 3  # chain or nodes cannot be reached
EXIT_REFUSED = 4  # the contract refused (consent revoked, purpose not allowed, not the owner...)
EXIT_PENDING = 5  # the key has not been delivered yet
EXIT_INTEGRITY = 6  # data did not verify (wrong key, corrupt shares beyond repair)

home_option = click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_HOME,
    show_default=True,
    envvar="DATASOV_HOME",
    help="Directory with your keystore and network config.",
)
rpc_option = click.option("--rpc", default=None, help="JSON-RPC URL of the chain (overrides the home's config).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="File holding the keystore passphrase (else $DATASOV_PASSPHRASE, the machine secret, or a prompt).",
)


@dataclass
class Network:
    rpc: str
    deployment: Deployment
    directory: StaticDirectory

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Network:
        if obj.get("version") != 1 or not obj.get("rpc"):
            raise errors.DeploymentError("network config must have version 1 and an rpc URL")
        return cls(str(obj["rpc"]), Deployment.from_json(obj["deployment"]), StaticDirectory.from_json(obj["nodes"]))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "rpc": self.rpc,
            "deployment": self.deployment.to_json(),
            "nodes": self.directory.to_json(),
        }


def load_network(home: Path, rpc: str | None = None) -> Network:
    path = home / CONFIG
    if not path.exists():
        fail(
            f"{home} has no network config",
            hint=f"run: datasov init --home {home} --network DEVNET_HOME/devnet.json (see `datasov devnet up`)",
        )
    try:
        network = Network.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError, errors.DeploymentError, DirectoryError) as err:
        fail(f"{path} is malformed: {err}", hint=f"run `datasov init --home {home} --force` again")
    if rpc:
        network.rpc = rpc
    return network


def passphrase(home: Path, passphrase_file: Path | None, *, confirm: bool = False) -> bytes:
    if passphrase_file is not None:
        return passphrase_file.read_bytes().rstrip(b"\r\n")
    if env := os.environ.get("DATASOV_PASSPHRASE"):
        return env.encode()
    secret = home / MACHINE_SECRET
    if secret.exists():
        mode = stat.S_IMODE(secret.stat().st_mode)
        if mode & 0o077:
            fail(f"{secret} is readable by others (mode {mode:o})", hint=f"chmod 600 {secret}")
        return secret.read_bytes().strip()
    if not sys.stdin.isatty():
        fail(
            "the keystore needs a passphrase and there is no terminal to ask for it",
            hint="set DATASOV_PASSPHRASE or pass --passphrase-file",
        )
    text: str = click.prompt("Keystore passphrase", hide_input=True, confirmation_prompt=confirm)
    return text.encode()


def make_machine_secret(home: Path) -> bytes:
    home.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    fd = os.open(home / MACHINE_SECRET, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret + b"\n")
    return secret


def open_keystore(home: Path, passphrase_file: Path | None) -> Keystore:
    return Keystore.open(home, passphrase(home, passphrase_file))


@contextlib.asynccontextmanager
async def open_chain(network: Network) -> AsyncIterator[Chain]:
    """The network's chain, connected for the length of the block."""
    chain = await Chain.connect(network.rpc, network.deployment)
    try:
        yield chain
    finally:
        await chain.close()


def run(main: Awaitable[T]) -> T:
    """Run a command's coroutine; turn every expected failure into a clear message and exit code."""
    try:
        return asyncio.run(_guard(main))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    raise AssertionError("unreachable")


async def _guard(main: Awaitable[T]) -> T:
    try:
        return await main
    except WrongPassphrase as err:
        fail(str(err), hint="check DATASOV_PASSPHRASE / --passphrase-file")
    except KeystoreError as err:
        fail(str(err))
    except errors.ChainUnavailable as err:
        fail(str(err), hint="is the chain running? (`datasov devnet up`, or check --rpc)", code=EXIT_UNAVAILABLE)
    except buyer.KeyNotDelivered as err:
        hint = "take your payment back: datasov license refund LICENSE" if err.refundable else "try again later"
        fail(str(err), hint=hint, code=EXIT_PENDING)
    except buyer.KeyMismatch as err:
        fail(
            str(err),
            hint="the owner delivered a wrong key; it was disputed on-chain and refunded"
            if err.refunded
            else "the dispute window had closed; keep the receipt (datasov audit) as evidence",
            code=EXIT_INTEGRITY,
        )
    except errors.DatasetNotServable as err:
        fail(
            f"the contract refused: {err}",
            hint="no active storage deal holds enough healthy shares of it (just published: its nodes have not "
            "accepted yet, try again shortly; or its storage ended)",
            code=EXIT_REFUSED,
        )
    except errors.ContractRevert as err:
        fail(f"the contract refused: {err}", code=EXIT_REFUSED)
    except (NotEnoughShares, IntegrityError) as err:
        fail(str(err), hint="too few nodes hold good shares right now; try again later", code=EXIT_INTEGRITY)
    except (MarketError, errors.ContractsError, NodeError, ErasureError) as err:
        fail(str(err))
    raise AssertionError("unreachable")


def command_runner(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Decorate an async click callback so it runs under :func:`run`."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        return run(fn(*args, **kwargs))

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper
