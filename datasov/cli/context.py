"""What every market command needs: the home directory, the network it talks to, the keystore.

``HOME/config.json`` (written by ``datasov init``) says which network: a JSON-RPC URL, the contract
deployment and libp2p bootstrap peers, in the same format ``datasov devnet up`` writes to ``devnet.json``::

    {"version": 1, "rpc": "http://127.0.0.1:8545", "deployment": {...}, "bootstrap": ["/ip4/.../p2p/..."]}

Nodes are found on the chain (:class:`market.chain_directory.ChainDirectory`, bound by
:func:`open_chain`) and, when the config has bootstrap peers, in the DHT too
(:func:`datasov.directory.open_directory`); a ``nodes`` list in an older file is read but not used
while a chain is open.

The keystore passphrase comes from, in order: ``--passphrase-file``, ``DATASOV_PASSPHRASE``, the
machine secret ``HOME/machine.secret`` (made by ``datasov init --no-passphrase``; 0600), a prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from contracts import errors
from contracts.chain import Chain
from contracts.models import Deployment
from contracts.terms import Purpose
from erasure.errors import ErasureError, IntegrityError, NotEnoughShares
from market import buyer
from market.directory import Directory, DirectoryError, StaticDirectory
from market.errors import MarketError
from market.keystore import Keystore, KeystoreError, WrongPassphrase
from market.placement import NotEnoughNodes
from storage_node.errors import NodeError

from ..directory import open_directory
from . import refusals
from .ui import fail, json_errors

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
    directory: Directory  # the chain's view once open_chain() is entered; before, an old file's list
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
    """The network's chain, connected for the length of the block; ``network.directory`` becomes
    the chain's view of the nodes (their announcements), with the DHT's when the network has
    bootstrap peers (:func:`datasov.directory.open_directory`)."""
    chain = await Chain.connect(network.rpc, network.deployment)
    try:
        async with open_directory(chain, network.bootstrap) as directory:
            network.directory = directory
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
        fail(str(err), name=type(err).__name__, hint="check DATASOV_PASSPHRASE / --passphrase-file")
    except KeystoreError as err:
        fail(str(err), name=type(err).__name__)
    except errors.ChainUnavailable as err:
        fail(
            str(err),
            name=type(err).__name__,
            hint="is the chain running? (`datasov devnet up`, or check --rpc)",
            code=EXIT_UNAVAILABLE,
        )
    except buyer.KeyNotDelivered as err:
        hint = "take your payment back: datasov license refund LICENSE" if err.refundable else "try again later"
        fail(str(err), name=type(err).__name__, hint=hint, code=EXIT_PENDING)
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
            f"the contract refused: {refusals.describe(err)}",
            name="DatasetNotServable",
            hint="no active storage deal holds enough healthy shares of it (just published: its nodes have not "
            "accepted yet, try again shortly; or its storage ended)",
            code=EXIT_REFUSED,
        )
    except errors.ContractRevert as err:
        refusal = refusals.to_json(err)
        fail(
            f"the contract refused: {refusal['message']}",
            code=EXIT_REFUSED,
            name=refusal["name"],
            values=refusal["values"],
            function=refusal["function"],
        )
    except (NotEnoughShares, IntegrityError) as err:
        fail(
            str(err),
            name=type(err).__name__,
            hint="too few nodes hold good shares right now; try again later",
            code=EXIT_INTEGRITY,
        )
    except NotEnoughNodes as err:
        fail(
            str(err),
            name="NotEnoughNodes",
            hint="nothing was published; see `datasov nodes`, or raise --max-fee, or lower -n",
            code=EXIT_UNAVAILABLE,
            needed=err.needed,
            qualified=err.qualified,
            rejected=err.rejected,
        )
    except (MarketError, errors.ContractsError, NodeError, ErasureError) as err:
        fail(str(err), name=type(err).__name__)
    raise AssertionError("unreachable")


def command_runner(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Decorate an async click callback so it runs under :func:`run`."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        json_errors(bool(kwargs.get("as_json")))
        return run(fn(*args, **kwargs))

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


if TYPE_CHECKING:  # click >= 8.5 types its ParamType by the value it converts to
    _IntParam = click.ParamType[int]
    _PurposeParam = click.ParamType[Purpose]
else:
    _IntParam = _PurposeParam = click.ParamType


def parse_amount(text: str) -> int:
    """'1.5' tokens -> 1500000000000000000 base units."""
    try:
        value = Decimal(text)
    except InvalidOperation as err:
        raise click.BadParameter(f"{text!r} is not an amount like 10 or 0.25") from err
    if not value.is_finite() or value < 0:
        raise click.BadParameter(f"{text!r}: amounts are finite and not negative")
    return int(value * 10**18)


class TokenAmount(_IntParam):
    """An amount in tokens ('2.5'), converted to base units; a bad one is a usage error (exit 2)."""

    name = "tokens"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_amount(str(value))
        except click.BadParameter as err:
            self.fail(err.message, param, ctx)


class PurposeType(_PurposeParam):
    """A license purpose by name (ai_training, ai-training...); an unknown one is a usage error."""

    name = "purpose"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Purpose:
        if isinstance(value, Purpose):
            return value
        try:
            return Purpose.parse(str(value))
        except errors.TermsError as err:
            self.fail(str(err), param, ctx)


TOKENS = TokenAmount()
PURPOSE = PurposeType()


yes_option = click.option("--yes", "-y", "yes", is_flag=True, help="Do not ask for confirmation.")
EXIT_USAGE = 2


def confirm(question: str, *, yes: bool) -> None:
    """Ask before an irreversible step; ``--yes`` skips the question. Without a terminal to ask on
    and without ``--yes``, refuse (exit 2) rather than guess."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"{question} (not confirmed)", hint="add --yes to confirm without a prompt", code=EXIT_USAGE)
    if not click.confirm(question, default=False, err=True):
        fail("not confirmed; nothing changed", code=EXIT_ERROR)


DEV_ACCOUNTS = 4  # dev accounts 1..4, as `datasov devnet up` lists them (0 funds the devnet itself)


def check_port_free(host: str, port: int) -> None:
    """Fail with one clear line if ``host:port`` cannot be listened on (0 always can)."""
    if port == 0:
        return
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            fail(f"port {port} is already in use on {host} ({err.strerror})", hint="choose another port")
