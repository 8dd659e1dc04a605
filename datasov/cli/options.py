"""The option blocks market commands share, each one decorator (the options themselves are
defined in :mod:`datasov.cli.context`).

``--help`` lists them in the order given here, after the command's own options::

    @group.command("revoke")
    @click.argument("dataset_id", type=int)
    @yes_option
    @signer_options
    @command_runner
    async def revoke(dataset_id: int, yes: bool, home: Path, rpc: str | None,
                     passphrase_file: Path | None, as_json: bool) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .context import home_option, json_option, passphrase_option, rpc_option

F = TypeVar("F", bound=Callable[..., Any])


def chain_options(fn: F) -> F:
    """``--home``, ``--rpc``, ``--json``: a command that reads the chain (parameters ``home``,
    ``rpc``, ``as_json``)."""
    for option in (json_option, rpc_option, home_option):
        fn = option(fn)
    return fn


def signer_options(fn: F) -> F:
    """``--home``, ``--rpc``, ``--passphrase-file``, ``--json``: a command that signs with the
    home's keystore (parameters ``home``, ``rpc``, ``passphrase_file``, ``as_json``)."""
    for option in (json_option, passphrase_option, rpc_option, home_option):
        fn = option(fn)
    return fn
