"""``datasov init``: create a home (keystore and network config)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from eth_account import Account

from market.keystore import Keystore

from .context import (
    CONFIG,
    DEV_ACCOUNTS,
    Network,
    home_option,
    json_option,
    make_machine_secret,
    open_keystore,
    passphrase,
    passphrase_option,
)
from .ui import emit_json, fail, out_console

# ------------------------------------------------------------------------------ init ----


@click.command()
@home_option
@click.option(
    "--network",
    "network_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A devnet.json (from `datasov devnet up`) or any file in that format.",
)
@click.option(
    "--dev-account",
    type=click.IntRange(1, DEV_ACCOUNTS),
    default=None,
    help=f"Use dev account N (1-{DEV_ACCOUNTS}, as `datasov devnet up` lists them; local chains only).",
)
@click.option("--no-passphrase", is_flag=True, help="Encrypt the keystore with a random machine secret (0600).")
@passphrase_option
@click.option("--force", is_flag=True, help="Rewrite the network config of an existing home.")
@json_option
def init(
    home: Path,
    network_file: Path | None,
    dev_account: int | None,
    no_passphrase: bool,
    passphrase_file: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Create a home: an encrypted keystore with your account, and the network to use.

    \b
    Example (with `datasov devnet up --home ./net` running elsewhere):
      datasov init --home ./alice --network ./net/devnet.json --dev-account 1 --no-passphrase
    """
    from contracts.devchain import dev_account as dev

    home.mkdir(parents=True, exist_ok=True)
    created = False
    if not (home / "keystore.json").exists():
        secret = make_machine_secret(home) if no_passphrase else passphrase(home, passphrase_file, confirm=True)
        account = dev(dev_account) if dev_account is not None else Account.create()
        Keystore.create(home, secret, account=account)
        created = True
    elif dev_account is not None:
        fail(f"{home} already has a keystore", hint="use a new --home for another account")
    if network_file is not None:
        if (home / CONFIG).exists() and not force:
            fail(f"{home / CONFIG} exists", hint="add --force to replace it")
        network = Network.from_json(json.loads(network_file.read_text()))
        (home / CONFIG).write_text(json.dumps(network.to_json(), indent=2) + "\n")
    address = open_keystore(home, passphrase_file).account.address
    if as_json:
        emit_json({"home": str(home), "address": address, "created": created})
    else:
        out_console.print(f"{'created' if created else 'using'} {home}: account [bold]{address}[/]")
