"""The ``datasov`` command: one module per command group, each imported only when it is invoked.

``COMMANDS`` below is the whole registry: a command's name, the module under ``datasov.cli`` that
defines it (``"module"`` or ``"module:attribute"``; the attribute defaults to the name) and its
one-line help, which ``datasov --help`` shows without importing anything (a test checks that each
line is the command's own short help). Registering a new command is one line there.

``context`` holds the shared options, the home's network and keystore, and the runner that turns
expected failures into messages and exit codes; ``ui`` the terminal output.
"""

from __future__ import annotations

from .keyfile_import import install as _install_keyfile_import
from .lazy import LazyGroup

_install_keyfile_import()  # eth_account without py_ecc's BLS12-381 (keyfile_import.py)

COMMANDS: dict[str, tuple[str, str]] = {
    "agent": (
        "agent",
        "The owner's agent: releases keys while consent stands, reports missed proofs, repairs shares.",
    ),
    "audit": (
        "audit",
        "Consent receipts: what you licensed, for which bytes, when; checkable against the chain alone.",
    ),
    "balance": (
        "earnings",
        "Your tokens: in your wallet, license payments you can claim now, payments still in their dispute window "
        "or waiting for delivery, and your storage-market balance.",
    ),
    "consent": ("consent", "Revoke consent for a dataset you own."),
    "datasets": ("browse", "List the datasets on offer, with whether their storage can serve them."),
    "demo": (
        "devnet",
        "Run the whole story on this machine: publish, license, fetch, lose nodes, get paid, revoke, audit.",
    ),
    "devnet": ("devnet", "A long-running local network: embedded chain over JSON-RPC plus storage nodes."),
    "cat": ("read", "Write a file of a licensed dataset (or a byte range of it) to standard output."),
    "durability": ("durability", "Estimate the yearly chance of losing a dataset, and the storage expansion factor."),
    "fetch": (
        "lab",
        "Fetch a licensed dataset: every block verified against the on-chain commitment, then decrypted.",
    ),
    "guardian": ("guardian", "Serve as a key guardian: hold pieces of datasets' keys and release them to licensees."),
    "guardians": (
        "guardian",
        "A dataset's key guardians: `datasov guardians DATASET` shows them; `replace` re-shares the key.",
    ),
    "init": ("home", "Create a home: an encrypted keystore with your account, and the network to use."),
    "keys": ("keys", "Back up and restore your keys (data keys of your datasets, license keys, account)."),
    "license": ("lab", "Buy licenses and get refunds."),
    "licenses": (
        "lab",
        "List the licenses you bought, with their state (valid, waiting for key, refundable, expired...).",
    ),
    "ls": ("read", "List the files of a licensed dataset (or of PATH inside it), read from the network."),
    "mine": (
        "earnings",
        "Your datasets: title, licenses sold, revenue, keys still to deliver, consent, storage health.",
    ),
    "node": ("operator:node", "Run a storage node: store encrypted shares, serve them, prove you hold them."),
    "nodes": (
        "nodes",
        "The storage nodes of the network: operator, URL, ask (tokens per GiB per epoch), capacity, stake, "
        "proofs made/missed, last seen (block), and whether each answers now.",
    ),
    "offer": ("publish", "Change what a dataset you own is offered for."),
    "pipeline": ("pipeline", "Encrypt, erasure-code and commit datasets on this machine (no network, no chain)."),
    "pool": (
        "pools:pool",
        "Data pools: many contributors, one dataset a lab licenses, every sale split on-chain by weight.",
    ),
    "pools": ("pools:pools_list", "Every pool on the network: curator, price, members, weight and revenue."),
    "publish": (
        "publish",
        "Encrypt, erasure-code and store a file or folder on n nodes, and offer licenses for it.",
    ),
    "show": (
        "browse",
        "Show one dataset: terms, sizes, commitment, storage health, where its shares are and whether they answer.",
    ),
    "storage": ("consent", "Manage the storage of datasets you own."),
    "ui": ("webui", "Open the web app: market, your licenses and datasets, your node, the network."),
    "withdraw": (
        "earnings",
        "Move your earnings to your wallet: claim every license payment whose dispute window closed, and withdraw "
        "your storage-market balance.",
    ),
}

HELP = """datasov: decentralized storage and consented data licensing.

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
      datasov audit 1 --home LAB -o receipt.json && datasov audit verify receipt.json --home LAB
      datasov node init --home DIR && datasov node run --home DIR --rpc URL --deployment NET/deployment.json

    \b
    Exit codes: 0 ok, 1 error, 2 usage, 3 chain or nodes unreachable, 4 refused by the contract
    (consent revoked, purpose not allowed...), 5 key not delivered yet, 6 data or receipt did not verify.
    """


def _version() -> str:
    from .. import __version__  # importlib.metadata: only when asked

    return __version__


cli = LazyGroup(
    name="datasov",
    package=__name__,
    registry=COMMANDS,
    help=HELP,
    version=_version,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def main() -> None:
    try:
        cli(prog_name="datasov")
    except SystemExit as done:  # click's standalone mode always ends here
        from .fastexit import main_exit

        if done.code is None or isinstance(done.code, int):  # a message to print: the usual way
            main_exit(done.code or 0)
        raise
