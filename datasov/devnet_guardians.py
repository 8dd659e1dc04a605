"""Every devnet node's operator as a key guardian, run inside the devnet's own process.

Each node keeps its guardian X25519 key in its home (``guardian.key``, 0600), announces it on-chain
(``KeyGuardians.registerGuardianKey``: the node is staked) and runs a
:class:`market.guardian_agent.GuardianAgent` task: any dataset published with ``--guardians`` can
then be sold while its owner's agent is offline. ``datasov devnet up --no-guardians`` skips it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount

from contracts.chain import Chain
from market.guardian_agent import GuardianAgent, load_or_create_guardian_key

from .devnet import stop_task


@dataclass
class DevnetGuardians:
    agents: dict[str, GuardianAgent] = field(default_factory=dict)  # operator address -> agent
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    @classmethod
    async def start(
        cls, chain: Chain, nodes: Iterable[tuple[Path, LocalAccount]], *, poll: float = 2.0
    ) -> DevnetGuardians:
        """Announce each node's guardian key (unless it already is) and start its agent."""
        out = cls()
        for home, operator in nodes:
            key = load_or_create_guardian_key(home)
            if await chain.guardian_key_of(operator.address) != bytes(key.public_key):
                await chain.register_guardian_key(operator, bytes(key.public_key))
            agent = GuardianAgent(chain, operator, key, home=home, poll=poll)
            out.agents[operator.address] = agent
            out.resume(operator.address)
        return out

    def resume(self, address: str) -> None:
        if address not in self.tasks:
            self.tasks[address] = asyncio.create_task(self.agents[address].run(), name=f"guardian-{address[:10]}")

    async def pause(self, address: str) -> None:
        """Take one guardian offline (its node may keep running)."""
        task = self.tasks.pop(address, None)
        if task is not None:
            await stop_task(task, self.agents[address])

    async def stop(self) -> None:
        for address in list(self.tasks):
            await self.pause(address)
