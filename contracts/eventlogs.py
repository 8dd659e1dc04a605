"""The events a lookup needs (guardian sets, pool contributions...), for any chain: kept from the
deployment block on and extended by the blocks mined since. No web3 import: it serves web3
connections and the light reader (:mod:`contracts.rpc`) alike.
"""

from __future__ import annotations

import asyncio
from typing import Any

Bound = Any  # a bound contract: web3's AsyncContract or a contracts.rpc.RpcContract


class EventLogs:
    """Every log of the contract events asked for, from the deployment block on, read incrementally
    (as :class:`market.chain_directory.ChainDirectory` reads announcements): a lookup fetches only the
    blocks mined since the previous lookup of that event, one ``eth_getLogs``, and filters what it
    keeps in memory; a lookup at the same head block reads nothing. ``reads`` records each range
    fetched as ``(event, from_block, to_block)``. :meth:`clear` after a chain revert (``DevChain.revert``
    does): the kept logs of blocks after the snapshot are gone from the chain.
    """

    def __init__(self, start_block: int) -> None:
        self.start_block = start_block
        self.reads: list[tuple[str, int, int]] = []
        self._kept: dict[tuple[str, str], tuple[int, list[Any]]] = {}  # (address, event) -> (next block, logs)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def clear(self) -> None:
        self._kept.clear()

    async def get(self, contract: Bound, event: str, head: int, **match: Any) -> list[Any]:
        """The ``event`` logs of ``contract`` up to block ``head`` whose arguments equal ``match``,
        in chain order."""
        key = (str(contract.address), event)
        async with self._locks.setdefault(key, asyncio.Lock()):
            start, logs = self._kept.get(key, (self.start_block, []))
            if head < start - 1:  # the chain went back (reverted by someone else): read it all again
                start, logs = self.start_block, []
            if head >= start:
                new = await getattr(contract.events, event)().get_logs(from_block=start, to_block=head)
                self.reads.append((event, start, head))
                logs = logs + sorted(new, key=lambda log: (int(log["blockNumber"]), int(log["logIndex"])))
                self._kept[key] = (head + 1, logs)
        return [
            log
            for log in logs
            if int(log["blockNumber"]) <= head and all(log["args"][k] == v for k, v in match.items())
        ]
