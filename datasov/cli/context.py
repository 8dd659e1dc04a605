"""What every market command needs: the home directory, the network it talks to, the keystore.

The network is ``HOME/config.json`` (written by ``datasov init``; format and reader in
:mod:`datasov.netconfig`). Nodes are found on the chain (:class:`market.chain_directory.ChainDirectory`,
bound by :func:`open_chain`) and, when the config has bootstrap peers, in the DHT too
(:func:`datasov.directory.open_directory`).

The keystore passphrase comes from, in order: ``--passphrase-file``, ``DATASOV_PASSPHRASE``, the
machine secret ``HOME/machine.secret`` (made by ``datasov init --no-passphrase``; 0600), a prompt.

Every command imports this module, so it imports only what start-up needs: the chain client, the
keystore and the flows are imported where they are used (:func:`open_chain`, :func:`open_keystore`),
and :func:`run` names the errors of the modules a command loaded (an error of a module that was never
imported cannot have been raised).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from contracts import errors
from contracts.terms import Purpose
from erasure.errors import ErasureError, IntegrityError, NotEnoughShares
from market.errors import MarketError
from storage_node.errors import NodeError

from ..netconfig import CONFIG, MACHINE_SECRET, Network, NetworkConfigError, read_network
from . import refusals
from .ui import fail, json_errors

if TYPE_CHECKING:
    from contracts.chain import Chain
    from market.keystore import Keystore

__all__ = ["CONFIG", "MACHINE_SECRET", "Network"]

T = TypeVar("T")
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


def load_network(home: Path, rpc: str | None = None) -> Network:
    """The home's network (:func:`datasov.netconfig.read_network`), or a clear error and exit 1."""
    try:
        return read_network(home, rpc)
    except NetworkConfigError as err:
        if err.missing:
            fail(
                str(err),
                hint=f"run: datasov init --home {home} --network DEVNET_HOME/devnet.json (see `datasov devnet up`)",
            )
        fail(str(err), hint=f"run `datasov init --home {home} --force` again")


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
    from market.keystore import Keystore

    return Keystore.open(home, passphrase(home, passphrase_file))


@contextlib.asynccontextmanager
async def open_chain(network: Network, *, read_only: bool = False) -> AsyncIterator[Chain]:
    """The network's chain, connected for the length of the block; ``network.directory`` becomes
    the chain's view of the nodes (their announcements), with the DHT's when the network has
    bootstrap peers (:func:`datasov.directory.open_directory`). ``read_only``: a reader (``Chain.reader``:
    raw JSON-RPC, web3 never imported) for commands that send no transaction."""
    from contracts.chain import Chain

    from ..directory import open_directory

    if read_only:
        chain = await Chain.reader(network.rpc, network.deployment)
    else:
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


def _loaded(module: str, name: str) -> tuple[type[Exception], ...]:
    """Error class ``module.name`` if ``module`` was imported (else nothing to catch: it was not raised)."""
    found = sys.modules.get(module)
    return (getattr(found, name),) if found is not None else ()


async def _guard(main: Awaitable[T]) -> T:
    try:
        return await main
    except _loaded("market.keystore", "WrongPassphrase") as err:
        fail(str(err), name=type(err).__name__, hint="check DATASOV_PASSPHRASE / --passphrase-file")
    except _loaded("market.keystore", "KeystoreError") as err:
        fail(str(err), name=type(err).__name__)
    except errors.ChainUnavailable as err:
        fail(
            str(err),
            name=type(err).__name__,
            hint="is the chain running? (`datasov devnet up`, or check --rpc)",
            code=EXIT_UNAVAILABLE,
        )
    except _loaded("market.buyer", "KeyNotDelivered") as err:
        hint = (
            "take your payment back: datasov license refund LICENSE"
            if getattr(err, "refundable", False)
            else "try again later"
        )
        fail(str(err), name=type(err).__name__, hint=hint, code=EXIT_PENDING)
    except _loaded("market.buyer", "KeyMismatch") as err:
        fail(
            str(err),
            hint="the owner delivered a wrong key; it was disputed on-chain and refunded"
            if getattr(err, "refunded", False)
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
    except _loaded("market.placement", "NotEnoughNodes") as err:
        fail(
            str(err),
            name="NotEnoughNodes",
            hint="nothing was published; see `datasov nodes`, or raise --max-fee, or lower -n",
            code=EXIT_UNAVAILABLE,
            needed=getattr(err, "needed", None),
            qualified=getattr(err, "qualified", None),
            rejected=getattr(err, "rejected", None),
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
