"""The operator's commands on the chain: ``datasov node join | status | claim | withdraw | leave``.

Each reads the node's home (``node.json``, the operator key) and talks to the chain named by
``--rpc`` and ``--deployment``. Token amounts print in tokens; ``--json`` gives base units as strings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import click

from contracts.chain import Chain
from contracts.models import Deployment
from storage_node.earnings import claim_all, operator_status
from storage_node.identity import load_or_create_operator, operator_address
from storage_node.membership import join as join_network
from storage_node.store.shares import ShareStore

from ..nodehome import announcement_for
from .context import TOKENS, command_runner, confirm, yes_option
from .node import load_config, node
from .ui import emit_json, fail, tokens

home_arg = click.option(
    "--home",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    required=True,
    help="The node's directory (from `datasov node init`).",
)
rpc_arg = click.option("--rpc", required=True, metavar="URL", help="EVM JSON-RPC endpoint of the network.")
deployment_arg = click.option(
    "--deployment",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="Deployment file (contract addresses), e.g. NET/deployment.json.",
)
json_arg = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


@asynccontextmanager
async def connected(rpc: str, deployment: Path, *, read_only: bool = False) -> AsyncIterator[Chain]:
    """The chain at ``rpc``; ``read_only``: a reader (``Chain.reader``, no web3) for commands that send nothing."""
    load = Chain.reader if read_only else Chain.connect
    chain = await load(rpc, Deployment.load(deployment))
    try:
        yield chain
    finally:
        await chain.close()


def _show(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(result)
        return
    for key, value in result.items():
        if isinstance(value, dict):
            for k, v in value.items():
                click.echo(f"{k:16} {v}")
        else:
            click.echo(f"{key:16} {value}")


@node.command()
@home_arg
@rpc_arg
@deployment_arg
@click.option("--stake", type=TOKENS, default=None, help="Tokens to stake (default: the minimum; added if staked).")
@json_arg
@command_runner
async def join(home: Path, rpc: str, deployment: Path, stake: int | None, as_json: bool) -> None:
    """Stake and announce this node: checks the wallet's ETH and tokens, approves and stakes what is
    missing, then puts a signed announcement (URL, peer id, capacity, ask, region) on-chain.
    Running it again re-announces only if the URL or terms changed (and adds --stake if given).

    \b
    Example:
      datasov node join --home ~/.datasov/node1 --rpc http://127.0.0.1:8545 --deployment net/deployment.json
      datasov node join --home ~/.datasov/node1 --rpc URL --deployment FILE --stake 50 --json
    """
    config = load_config(home)
    if config.port == 0 and config.public_url is None:
        fail(
            f"{home} listens on port 0 (any free port): there is no fixed URL to announce",
            hint="datasov node init with --http HOST:PORT, or --public-url",
        )
    account = load_or_create_operator(home)
    async with connected(rpc, deployment) as chain:
        announcement = announcement_for(home, config, operator=account.address, chain_id=chain.deployment.chain_id)
        result = await join_network(chain, account, announcement, stake=stake)
    out = result.to_json()
    if as_json:
        emit_json(out)
    else:
        what = "announced" if result.announced else "already announced with these terms"
        click.echo(
            f"operator {result.operator} joined: stake {tokens(result.stake)} (added {tokens(result.staked)}), "
            f"{what} at {announcement.http_url}\nrun it with: datasov node run --home {home} --rpc {rpc} "
            f"--deployment {deployment}"
        )


@node.command()
@home_arg
@click.option("--rpc", default=None, metavar="URL", help="Also show stake, proofs, fees, slashes and exit.")
@click.option(
    "--deployment",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Deployment file (contract addresses) for --rpc.",
)
@json_arg
@command_runner
async def status(home: Path, rpc: str | None, deployment: Path | None, as_json: bool) -> None:
    """What this node stores (works while the node is stopped); with --rpc: stake, shares accepted,
    proofs made and missed, fees claimed and claimable, withdrawable, slashes, leaving and exit epoch.

    \b
    Example:
      datasov node status --home ~/.datasov/node1 --json
      datasov node status --home ~/.datasov/node1 --rpc http://127.0.0.1:8545 --deployment deploy.json
    """
    config = load_config(home)
    store = ShareStore(home, capacity=config.capacity)
    try:
        records = store.index.all()
        result: dict[str, Any] = {
            "operator": operator_address(home),
            "shares": sum(r.state == "ok" for r in records),
            "quarantined": sum(r.state == "quarantined" for r in records),
            "used": store.index.used_bytes(),
            "capacity": store.capacity,
            "ask": str(config.ask),
            "region": config.region,
        }
    finally:
        store.close()
    if rpc is not None:
        if deployment is None:
            fail("--rpc needs --deployment FILE (the contract addresses)")
        async with connected(rpc, deployment, read_only=True) as chain:
            result["chain"] = (await operator_status(chain, result["operator"])).to_json()
    _show(result, as_json)


@node.command()
@home_arg
@rpc_arg
@deployment_arg
@json_arg
@command_runner
async def claim(home: Path, rpc: str, deployment: Path, as_json: bool) -> None:
    """Move the fees every share earned (proven epochs) to your withdrawable balance.

    \b
    Example:
      datasov node claim --home ~/.datasov/node1 --rpc http://127.0.0.1:8545 --deployment net/deployment.json
    """
    account = load_or_create_operator(home)
    async with connected(rpc, deployment) as chain:
        count, amount = await claim_all(chain, account)
        withdrawable = await chain.storage_balance(account.address)
    out = {"shares": count, "claimed": str(amount), "withdrawable": str(withdrawable)}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"claimed {tokens(amount)} from {count} share(s); withdrawable now {tokens(withdrawable)}")


@node.command()
@home_arg
@rpc_arg
@deployment_arg
@json_arg
@command_runner
async def withdraw(home: Path, rpc: str, deployment: Path, as_json: bool) -> None:
    """Send your withdrawable balance (claimed fees, rewards) to your wallet; after `node leave` and
    its exit delay, with no share left to prove, the stake too.

    \b
    Example:
      datasov node withdraw --home ~/.datasov/node1 --rpc http://127.0.0.1:8545 --deployment net/deployment.json
    """
    account = load_or_create_operator(home)
    async with connected(rpc, deployment) as chain:
        balance = await chain.storage_balance(account.address)
        if balance:
            await chain.withdraw(account)
        state = await operator_status(chain, account.address)
        unstaked = 0
        if state.exit_ready:
            unstaked = state.stake
            await chain.withdraw_stake(account, unstaked)
        wallet = await chain.balance_of(account.address)
    if not balance and not unstaked:
        why = (
            f"; the stake is locked until epoch {state.exit_epoch} and the last share is done" if state.leaving else ""
        )
        fail(f"nothing to withdraw (claim fees first: datasov node claim){why}", name="NothingToWithdraw")
    out = {"withdrawn": str(balance), "unstaked": str(unstaked), "wallet": str(wallet)}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"withdrew {tokens(balance)}, unstaked {tokens(unstaked)}; wallet holds {tokens(wallet)}")


@node.command()
@home_arg
@rpc_arg
@deployment_arg
@yes_option
@json_arg
@command_runner
async def leave(home: Path, rpc: str, deployment: Path, yes: bool, as_json: bool) -> None:
    """Stop taking new deals: keep running the node and proving until its deals end (or repair hands
    its shares to others), then `datasov node withdraw` returns the stake after the exit delay.
    A missed proof while leaving is still slashed. There is no way back for this operator key.

    \b
    Example:
      datasov node leave --home ~/.datasov/node1 --rpc http://127.0.0.1:8545 --deployment net/deployment.json --yes
    """
    account = load_or_create_operator(home)
    confirm(f"operator {account.address} leaves the network for good: take no new deals?", yes=yes)
    async with connected(rpc, deployment) as chain:
        exit_epoch = await chain.leave(account)
        state = await operator_status(chain, account.address)
    out = {"operator": account.address, "exit_epoch": exit_epoch, "active_shares": state.active_shares}
    if as_json:
        emit_json(out)
    else:
        click.echo(
            f"operator {account.address} is leaving: no new deals. Keep the node running: {state.active_shares} "
            f"share(s) still to prove until their deals end. Stake can be withdrawn from epoch {exit_epoch} "
            f"(now {state.current_epoch}) once none is left: datasov node withdraw --home {home} ..."
        )
