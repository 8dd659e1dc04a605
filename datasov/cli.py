"""The ``datasov`` command."""

from __future__ import annotations

import click

from . import __version__
from .cli_node import node
from .cli_pipeline import pipeline


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="datasov")
def cli() -> None:
    """datasov: decentralized storage and consented data licensing.

    Data owners publish encrypted, erasure-coded datasets and sell licenses to train AI on
    them; AI labs buy licenses and fetch exactly the bytes they paid for; node operators
    store shards and prove on-chain that they still hold them.

    \b
    Try:
      datasov pipeline roundtrip            encode + decode the bundled sample, losing shares
      datasov pipeline encode DATA -o SHARES
      datasov pipeline decode SHARES -o OUT --key-file SHARES.key
      datasov node init --home DIR && datasov node run --home DIR
    """


cli.add_command(pipeline)
cli.add_command(node)


def main() -> None:
    cli(prog_name="datasov")
