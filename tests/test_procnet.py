"""Starting many node processes: a bounded number at once, and a node that does not start is named."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from datasov.procnet import NodeProcess, NodeProcessError, bounded, first_failure


async def test_bounded_runs_at_most_limit_at_once_and_keeps_order() -> None:
    """30 starts at once made each child of the batch share 2 cores with 29 others (each passed
    START_TIMEOUT); ``bounded`` lets ``limit`` in, the next only when one ends."""
    running: set[int] = set()
    most = 0
    release = {i: asyncio.Event() for i in range(7)}
    entered = {i: asyncio.Event() for i in range(7)}

    async def work(i: int) -> int:
        nonlocal most
        running.add(i)
        most = max(most, len(running))
        entered[i].set()
        await release[i].wait()
        running.discard(i)
        if i == 3:
            raise ValueError("node 3")
        return i * 10

    task = asyncio.create_task(bounded(list(range(7)), work, limit=3))
    for i in range(7):  # release them one by one, as each gets in
        await entered[i].wait()
        assert len(running) <= 3
        release[i].set()
    results = await task
    assert most == 3
    assert results[:3] == [0, 10, 20]
    assert isinstance(results[3], ValueError)
    assert results[4:] == [40, 50, 60]
    assert first_failure(results) is results[3]
    assert first_failure([1, 2]) is None


async def test_a_node_that_exits_at_start_is_named_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `node run` child that exits before its line: the error says which node, its address and
    pid, what happened and the tail of its log (was "node 7 did not start: ..." with no cause).
    The child is a stand-in that fails at once (a real `node run` spends seconds importing first)."""
    said = "Error: Invalid value for '--deployment': File 'missing.json' does not exist."
    child = [sys.executable, "-c", f"import sys; print({said!r}, file=sys.stderr); sys.exit(2)"]
    monkeypatch.setattr(NodeProcess, "command", lambda *_a, **_k: child)
    home = tmp_path / "node-07"
    home.mkdir()
    proc = NodeProcess(7, home, "127.0.8.1")
    with pytest.raises(NodeProcessError) as err:
        await proc.start("http://127.0.0.1:1", tmp_path / "missing.json")
    text = str(err.value)
    assert text.startswith("node 7 (127.0.8.1, pid ")
    assert "`node run` exited (2)" in text
    assert said in text  # from the node's log
    assert not proc.alive
