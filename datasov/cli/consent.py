"""The owner's irreversible steps: ``datasov consent revoke`` and ``datasov storage end``.

Each asks first (``--yes`` skips the question) and says what it does to the licenses already sold.
"""

from __future__ import annotations

from pathlib import Path

import click

from contracts import errors
from contracts.chain import Chain
from market import publisher

from .context import (
    command_runner,
    confirm,
    load_network,
    open_chain,
    open_keystore,
    yes_option,
)
from .effects import end_effects, revoke_effects
from .options import signer_options
from .ui import emit_json, err_console, out_console


async def _owned(chain: Chain, dataset_id: int, caller: str) -> None:
    """Refuse as the contract would (NotDatasetOwner), before asking anything."""
    owner = (await chain.get_dataset(dataset_id)).owner
    if owner.lower() != caller.lower():
        raise errors.revert_class("NotDatasetOwner")(
            f"NotDatasetOwner(datasetId={dataset_id}, caller={caller})",
            values={"datasetId": dataset_id, "caller": caller},
        )


@click.group()
def consent() -> None:
    """Revoke consent for a dataset you own."""


@consent.command("revoke")
@click.argument("dataset_id", type=int)
@yes_option
@signer_options
@command_runner
async def consent_revoke(
    dataset_id: int, yes: bool, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """Revoke consent, for good: no new licenses and no key release from now on; revocable
    licenses end now, irrevocable ones run until they expire; buyers still waiting for a key can
    take their payment back at once. Asks first (--yes to skip).

    \b
    Example:
      datasov consent revoke 1
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        await _owned(chain, dataset_id, keystore.account.address)
        effects = await revoke_effects(chain, dataset_id)
        err_console.print(" ".join(effects.lines), highlight=False)
        confirm(effects.question, yes=yes)
        await chain.revoke_consent(keystore.account, dataset_id)
        revoked_at = await chain.consent_revoked_at(dataset_id)
    result = {"dataset_id": dataset_id, "revoked_at": revoked_at, **effects.licenses}
    if as_json:
        emit_json(result)
    else:
        out_console.print(f"consent for dataset {dataset_id} revoked; licenses ended: {result['licenses_ended']}")


@click.group()
def storage() -> None:
    """Manage the storage of datasets you own."""


@storage.command("end")
@click.argument("dataset_id", type=int)
@yes_option
@signer_options
@command_runner
async def storage_end(
    dataset_id: int, yes: bool, home: Path, rpc: str | None, passphrase_file: Path | None, as_json: bool
) -> None:
    """End a dataset's storage deal and order its nodes to delete the shares now. Licenses stay
    on-chain, but nobody can fetch the dataset any more and no new license can be sold (the
    dataset is not servable). Asks first (--yes to skip).

    \b
    Example:
      datasov storage end 1
    """
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        await _owned(chain, dataset_id, keystore.account.address)
        effects = await end_effects(chain, dataset_id)
        err_console.print(" ".join(effects.lines), highlight=False)
        confirm(effects.question, yes=yes)
        result = await publisher.end_storage(chain, keystore.account, network.directory, dataset_id)
    result.update(effects.licenses)
    if as_json:
        emit_json(result)
    else:
        out_console.print(
            f"deal(s) {result['deals']} terminated; {len(result['deleted'])} share(s) deleted now, "
            f"{len(result['pending'])} left to the nodes' garbage collection"
        )
