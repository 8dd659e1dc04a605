"""The ``datasov`` command: one module per command group.

``context`` holds the shared options, the home's network and keystore, and the runner that turns
expected failures into messages and exit codes; ``ui`` the terminal output.
"""

from __future__ import annotations

import click

from .. import __version__
from .agent import agent
from .audit import audit
from .browse import datasets, show
from .consent import consent, storage
from .devnet import demo, devnet
from .durability import durability
from .earnings import balance, mine, withdraw
from .home import init
from .keys import keys
from .lab import fetch, license, licenses
from .node import node
from .pipeline import pipeline
from .publish import offer, publish
from .read import cat, ls


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="datasov")
def cli() -> None:
    """datasov: decentralized storage and consented data licensing.

    Data owners publish encrypted, erasure-coded datasets and sell licenses to train AI on
    them; AI labs buy licenses and fetch exactly the bytes they paid for; node operators
    store shares and prove on-chain that they still hold them.

    \b
    Try:
      datasov demo                          the whole story on this machine (about a minute)
      datasov devnet up --home NET          a local chain + 12 nodes that keep running
      datasov init --home ME --network NET/devnet.json --dev-account 1 --no-passphrase
      datasov publish DATA --home ME --price 5 --terms training
      datasov agent run --home ME           release keys to buyers while consent stands
      datasov mine --home ME                your datasets: licenses sold, revenue, keys pending, health
      datasov license buy DATASET --home LAB && datasov fetch --dataset DATASET --home LAB -o OUT
      datasov ls LICENSE --home LAB && datasov cat LICENSE labels.csv --range 0-1023 --home LAB
      datasov audit 1 --home LAB -o receipt.json && datasov audit verify receipt.json --home LAB
      datasov node init --home DIR && datasov node run --home DIR --rpc URL --deployment NET/deployment.json

    \b
    Exit codes: 0 ok, 1 error, 2 usage, 3 chain or nodes unreachable, 4 refused by the contract
    (consent revoked, purpose not allowed...), 5 key not delivered yet, 6 data or receipt did not verify.
    """


cli.add_command(demo)
cli.add_command(devnet)
for command in (
    init,
    publish,
    offer,
    datasets,
    show,
    mine,
    balance,
    withdraw,
    license,
    licenses,
    fetch,
    ls,
    cat,
    consent,
    storage,
    audit,
    agent,
    keys,
    durability,
):
    cli.add_command(command)
cli.add_command(pipeline)
cli.add_command(node)


def main() -> None:
    cli(prog_name="datasov")
