"""`datasov nodes` over the devnet's node processes: chain terms, DHT last seen, reachable now."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import as_json, datasov


def test_nodes_shows_each_nodes_dht_record_and_whether_it_answers(devnet: Path) -> None:
    described = json.loads((devnet / "devnet.json").read_text())
    assert described["bootstrap"]  # the process devnet writes its first node's multiaddrs
    args = ["nodes", "--rpc", described["rpc"], "--deployment", str(devnet / "deployment.json")]
    for peer in described["bootstrap"]:
        args += ["--bootstrap", peer]
    seen = as_json(datasov(*args, "--timeout", "5", "--json"))
    listed = {n["operator"]: n for n in seen["nodes"]}
    ours = [listed[n["address"]] for n in described["nodes"]]  # another test may have joined one more
    assert len(ours) == 12
    for node in ours:
        assert node["in_dht"], node
        assert node["peer_id"].startswith("12D3KooW")
        assert node["dht_seen_ago_s"] is not None
        assert node["dht_seen_ago_s"] >= 0
        assert node["dht_free"] > 0
        assert node["reachable"], node
    assert seen["dht_seconds"] is not None

    text = datasov(*args, "--timeout", "5").stdout
    first = ours[0]["operator"]
    assert first in text
    assert "s ago" in text  # last seen: the block, and when its DHT record was published
    assert "DHT records in" in text

    chain_only = as_json(datasov(*args[:5], "--no-probe", "--json"))  # no --dht, no bootstrap peers: the chain alone
    assert chain_only["dht_seconds"] is None
    assert all("in_dht" not in n for n in chain_only["nodes"])

    no_peers = datasov(*args[:5], "--dht", "--json", check=False)  # --dht with no bootstrap peers to ask
    assert no_peers.returncode == 2
    assert "--dht needs bootstrap peers" in no_peers.stderr
