"""Placement's draw (pure): distinct operators and networks, proof history as weight, seedable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from market.directory import NodeInfo
from market.placement import Candidate, PlacementPolicy, draw, network_of, weight


def cand(i: int, host: str, *, ok: int = 0, missed: int = 0) -> Candidate:
    return Candidate(NodeInfo(f"0x{i:040x}", f"http://{host}:7401", proofs_ok=ok, proofs_missed=missed), 1 << 30, 0.01)


def test_networks_are_24_for_ipv4_48_for_ipv6_and_names_alone() -> None:
    assert network_of("http://127.0.3.1:7401") == "127.0.3.0/24"
    assert network_of("http://127.0.3.200:1") == "127.0.3.0/24"
    assert network_of("http://[2001:db8:1:2::5]:7401") == "2001:db8:1::/48"
    assert network_of("https://Node.Example:443") == "node.example"


def test_one_share_per_network_and_operator() -> None:
    nodes = [cand(1, "127.0.1.1"), cand(2, "127.0.1.2"), cand(3, "127.0.2.1"), cand(3, "127.0.3.1")]
    chosen, skipped = draw(nodes, 3, policy=PlacementPolicy(seed=1))
    assert len(chosen) == 2  # one of 127.0.1.x, and operator 3 once
    assert len({c.network for c in chosen}) == 2
    assert len({c.node.address for c in chosen}) == 2
    assert any("already holds a share" in why for why in skipped.values())
    relaxed, _ = draw(nodes, 3, policy=PlacementPolicy(seed=1, distinct_networks=False))
    assert len(relaxed) == 3


def test_the_draw_is_deterministic_with_a_seed_and_prefers_good_history() -> None:
    nodes = [cand(i, f"127.0.{i}.1") for i in range(1, 6)]
    nodes.append(cand(9, "127.0.9.1", ok=2, missed=5))
    policy = PlacementPolicy(seed=7)
    assert draw(nodes, 3, policy=policy) == draw(nodes, 3, policy=policy)
    picked_bad = sum(
        any(c.node.address == nodes[-1].node.address for c in draw(nodes, 1, policy=PlacementPolicy(seed=s))[0])
        for s in range(300)
    )
    assert picked_bad < 300 / 6 / 3  # weight 3/53 against 1 for the others: rarely first
    assert weight(nodes[0].node) == 1.0


@given(
    hosts=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 3), st.integers(0, 9)), min_size=1, max_size=14),
    n=st.integers(1, 8),
    seed=st.integers(0, 1000),
)
def test_never_two_on_one_network_or_operator(hosts: list[tuple[int, int, int]], n: int, seed: int) -> None:
    nodes = [cand(op, f"127.0.{net}.{last + 1}") for op, net, last in hosts]
    chosen, _ = draw(nodes, n, policy=PlacementPolicy(seed=seed))
    assert len({c.network for c in chosen}) == len(chosen)
    assert len({c.node.address for c in chosen}) == len(chosen)
    # as many as distinct networks and operators allow, greedy: at least one, at most n
    assert 1 <= len(chosen) <= n
