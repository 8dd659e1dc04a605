"""A guardian agent's round that finds nothing new leaves its state file alone: the demo's five agents
polling every 0.2 s rewrote it (write and rename) 4,400 times in one run, ~5 ms each on a busy disk."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from nacl.public import PrivateKey

from contracts.devchain import dev_account
from market.guardian_agent import GuardianAgent


class Chain:
    """The reads of a round that guards nothing and sees no purchase (a unit test: the flows are tested
    on chains in tests/guardians/test_flows.py)."""

    deployment = SimpleNamespace(deployed_block=1, delivery_window=3600)

    def __init__(self) -> None:
        self.head = 5

    async def block_number(self) -> int:
        return self.head

    async def guardian_sets_changed(self, start: int, end: int) -> set[int]:
        return set()

    async def purchases(self, start: int, end: int) -> list[dict[str, Any]]:
        return []


async def test_a_round_with_nothing_new_does_not_rewrite_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = Chain()
    agent = GuardianAgent(chain, dev_account(5), PrivateKey.generate(), home=tmp_path)  # type: ignore[arg-type]
    writes: list[str] = []
    replace = os.replace

    def counted(src: Any, dst: Any) -> None:
        writes.append(str(dst))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", counted)
    assert await agent.tick() == []
    assert writes == [str(agent.state_path)]  # blocks 1-5 read: the next block to read is kept
    assert await agent.tick() == []
    assert len(writes) == 1  # the same head: nothing to keep
    chain.head = 6
    assert await agent.tick() == []
    assert len(writes) == 2
    assert '"next_block": 7' in agent.state_path.read_text()
