"""What the ``datasov pool`` commands share: run an action with the home's chain and keystore,
and print its result (a line, or JSON with ``--json``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from contracts.chain import Chain
from market.keystore import Keystore

from .context import load_network, open_chain, open_keystore
from .ui import emit_json, out_console

Action = Callable[[Chain, Keystore], Awaitable[dict[str, Any]]]


async def with_chain(home: Path, rpc: str | None, passphrase_file: Path | None, action: Action) -> dict[str, Any]:
    """Open the home's keystore and chain, run ``action`` with them and return its result."""
    network = load_network(home, rpc)
    keystore = open_keystore(home, passphrase_file)
    async with open_chain(network) as chain:
        return await action(chain, keystore)


def print_result(result: dict[str, Any], as_json: bool, line: str) -> None:
    """``result`` as JSON with ``--json``, else the one ``line`` for a person."""
    if as_json:
        emit_json(result)
    else:
        out_console.print(line, highlight=False)
