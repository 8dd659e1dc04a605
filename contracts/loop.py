"""Background workers that do one round at a time: ``await w.tick()``; ``await w.run()`` repeats it."""

from __future__ import annotations

import asyncio
import logging

from .errors import ChainError

log = logging.getLogger("datasov")


class Ticking:
    """Subclasses implement :meth:`tick` and set ``poll`` (seconds between rounds).

    :meth:`run` survives a slow or unreachable chain (the round is tried again) and ends after
    :meth:`stop`. Cancelling the task works too, but Python 3.11's ``asyncio.wait_for``, which
    web3 uses, can swallow a cancellation: callers that must stop it stop it with both.
    """

    poll: float = 1.0
    _stopping: bool = False

    async def tick(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        self._stopping = False
        while not self._stopping:
            try:
                await self.tick()
            except ChainError as err:
                log.warning("%s round failed (will retry): %s", type(self).__name__, err)
            await asyncio.sleep(self.poll)
