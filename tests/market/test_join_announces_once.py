"""`datasov node init` makes the node's libp2p key, so `node join` announces the peer id (and, with a
fixed --p2p port, the address) that `node run` will have: one announcement transaction per node,
not a second one at the first `node run` (issue 13's leftover, issue 15)."""

from __future__ import annotations

import gc
import json
import socket
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from contracts.chain import Chain
from datasov.cli import cli
from datasov.cli.node import _reannounce
from datasov.nodehome import NodeHome, announcement_for
from storage_node.membership import join
from storage_node.node import NodeConfig, StorageNode

from .conftest import OPERATORS, STAKE


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_init_join_run_is_one_announcement_carrying_the_peer_id(chain: Chain, tmp_path: Path) -> None:
    op = OPERATORS[4]
    home = tmp_path / "node"
    home.mkdir()
    (home / "operator.key").write_text(bytes(op.key).hex() + "\n")
    (home / "operator.key").chmod(0o600)
    http, p2p = _free_port("127.0.212.1"), _free_port("127.0.212.1")
    listen = f"/ip4/127.0.212.1/tcp/{p2p}"
    args = ["node", "init", "--home", str(home), "--http", f"127.0.212.1:{http}", "--p2p", listen, "--json"]
    made = CliRunner().invoke(cli, args)
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    assert created["peer_id"].startswith("12D3KooW")
    assert created["p2p"] == listen
    assert stat.S_IMODE((home / "p2p.key").stat().st_mode) == 0o600

    config = NodeHome.load(home)  # what `node join` announces
    announcement = announcement_for(home, config, operator=op.address, chain_id=chain.deployment.chain_id)
    assert (announcement.peer_id, announcement.multiaddrs) == (created["peer_id"], (listen,))
    assert (await join(chain, op, announcement, stake=STAKE)).announced

    node = StorageNode(
        NodeConfig(
            home=home,
            host=config.host,
            port=config.port,
            capacity=config.capacity,
            p2p_listen=config.p2p,
            chain_id=chain.deployment.chain_id,
            announce_at_start=False,
        )
    )
    await node.start()
    try:
        assert node.p2p is not None
        assert node.p2p.peer_id == created["peer_id"]
        await _reannounce(chain, node, config)  # what `node run --rpc` does on start
    finally:
        await node.stop()
        gc.collect()  # the sockets py-libp2p leaves to the collector are finalized under this test's filter
    records = await chain.announced(operator=op.address)
    assert len(records) == 1  # nothing new to announce: the first join said it all
