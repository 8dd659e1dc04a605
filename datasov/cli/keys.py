"""``datasov keys export|import``: an encrypted backup of the keystore, to move data keys between homes.

The data key of a dataset lives only in the home that published it; a key agent run from any
other home cannot serve its buyers. ``keys export`` writes every key (account, data keys, buyer
keys) sealed under a backup passphrase of its own; ``keys import`` merges one into a home.

The backup passphrase comes from ``--backup-passphrase-file``, ``DATASOV_BACKUP_PASSPHRASE``, or a
prompt; it is never the home's own passphrase by default.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from market import key_agent
from market.keystore import KeystoreError, WrongPassphrase

from .context import home_option, json_option, open_keystore, passphrase_option
from .ui import emit_json, fail, json_errors, out_console

backup_passphrase_option = click.option(
    "--backup-passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="File holding the backup's passphrase (else $DATASOV_BACKUP_PASSPHRASE, or a prompt).",
)


def _backup_passphrase(path: Path | None, *, confirm: bool) -> bytes:
    if path is not None:
        secret = path.read_bytes().rstrip(b"\r\n")
    elif env := os.environ.get("DATASOV_BACKUP_PASSPHRASE"):
        secret = env.encode()
    elif sys.stdin.isatty():
        secret = click.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm).encode()
    else:
        fail(
            "the key backup needs a passphrase and there is no terminal to ask for it",
            hint="set DATASOV_BACKUP_PASSPHRASE or pass --backup-passphrase-file",
            code=2,
        )
    if len(secret) < 8:
        fail("a backup passphrase has at least 8 characters", code=2)
    return secret


@click.group()
def keys() -> None:
    """Back up and restore your keys (data keys of your datasets, license keys, account)."""


@keys.command("export")
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@backup_passphrase_option
@home_option
@passphrase_option
@json_option
def keys_export(
    out: Path, backup_passphrase_file: Path | None, home: Path, passphrase_file: Path | None, as_json: bool
) -> None:
    """Write an encrypted backup of this home's keys (mode 0600; never overwrites).

    \b
    Example:
      datasov keys export -o alice-keys.backup && datasov keys import alice-keys.backup --home ./laptop
    """
    json_errors(as_json)
    if out.exists():
        fail(f"{out} already exists", hint="choose a new path with -o")
    try:
        store = open_keystore(home, passphrase_file)
        data = store.export_backup(_backup_passphrase(backup_passphrase_file, confirm=True))
    except KeystoreError as err:
        fail(str(err), name=type(err).__name__)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    datasets = store.datasets()
    if as_json:
        emit_json({"file": str(out), "datasets": datasets, "licenses": store.licenses()})
    else:
        out_console.print(f"wrote the keys of {store.account.address} (datasets {datasets}) to {out}")


@keys.command("import")
@click.argument("backup", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@backup_passphrase_option
@home_option
@passphrase_option
@json_option
def keys_import(
    backup: Path, backup_passphrase_file: Path | None, home: Path, passphrase_file: Path | None, as_json: bool
) -> None:
    """Merge a key backup into this home (keys already here are kept; the account is not replaced).

    The home's key agent then looks at every purchase again, so licenses it skipped for want of a
    data key are served on its next run.

    \b
    Example:
      datasov keys import alice-keys.backup --home ./laptop && datasov agent run --home ./laptop
    """
    json_errors(as_json)
    try:
        store = open_keystore(home, passphrase_file)
        result = store.import_backup(backup.read_bytes(), _backup_passphrase(backup_passphrase_file, confirm=False))
    except WrongPassphrase as err:
        fail(str(err), name="WrongPassphrase", hint="the backup's passphrase, not this home's")
    except KeystoreError as err:
        fail(str(err), name=type(err).__name__)
    if result.datasets:
        # the key agent of this home skipped purchases it had no key for and moved past them:
        # forget its position so its next run looks at every purchase again (delivered ones are skipped)
        (home / key_agent.STATE_FILE).unlink(missing_ok=True)
    summary = {
        "datasets_added": result.datasets,
        "buyer_keys_added": result.buyer_keys,
        "same_account": result.same_account,
        "datasets": store.datasets(),
    }
    if as_json:
        emit_json(summary)
        return
    out_console.print(
        f"imported {result.datasets} data key(s) and {result.buyer_keys} license key(s); "
        f"this home now holds the keys of datasets {summary['datasets']}"
    )
    if not result.same_account:
        out_console.print(
            f"[yellow]note:[/] the backup is of another account; this home ({store.account.address}) can release "
            "those keys only for datasets whose owner made it their key agent"
        )
