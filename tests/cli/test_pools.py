"""Data pools as users type them against a `datasov devnet up`: two contributors, a curator, a lab;
one sale split by weight, fetched as one folder per contribution, a withdrawal the next sale excludes."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasov.demo import SAMPLE

from .conftest import as_json, datasov

EXIT_USAGE, EXIT_REFUSED = 2, 4


@pytest.mark.slow
@pytest.mark.timeout(900)  # a score of commands, each a process and a transaction or two
def test_a_pool_from_create_to_claim(devnet: Path, tmp_path: Path) -> None:
    homes = {name: tmp_path / name for name in ("alice", "lab", "bob", "curator")}
    for account, home in enumerate(homes.values(), start=1):
        datasov(
            "init",
            "--network",
            str(devnet / "devnet.json"),
            "--dev-account",
            str(account),
            "--no-passphrase",
            home=home,
        )
    alice, lab, bob, curator = homes.values()
    datasets = {
        who: as_json(datasov("publish", str(SAMPLE), "-k", "2", "-n", "4", "--json", home=home))["dataset_id"]
        for who, home in (("alice", alice), ("bob", bob))
    }
    pool = as_json(
        datasov("pool", "create", "--price", "10", "--curator-fee", "10", "--rules", "text", "--json", home=curator)
    )["pool_id"]
    ids = {
        who: as_json(datasov("pool", "contribute", str(pool), str(datasets[who]), "--json", home=home))[
            "contribution_id"
        ]
        for who, home in (("alice", alice), ("bob", bob))
    }
    datasov("pool", "accept", str(ids["alice"]), "--weight", "1", home=curator)
    datasov("pool", "accept", str(ids["bob"]), "--weight", "3", home=curator)

    bought = as_json(datasov("pool", "buy", str(pool), "--json", home=lab))
    assert bought["contributions"] == 2
    released = as_json(datasov("pool", "release", str(bought["license_id"]), "--json", home=curator))
    assert {r["outcome"] for r in released["releases"]} == {"delivered"}
    fetched = as_json(
        datasov("pool", "fetch", str(bought["license_id"]), "-o", str(tmp_path / "out"), "--json", home=lab)
    )
    assert sorted(fetched["folders"]) == sorted(str(i) for i in ids.values())
    for folder in fetched["folders"].values():
        assert (tmp_path / "out" / folder).exists()
    receipt = as_json(datasov("pool", "receipt", str(bought["license_id"]), "--json", home=lab))
    assert [(r["contribution_id"], r["weight"]) for r in receipt["contributions"]] == [
        (ids["alice"], "1"),
        (ids["bob"], "3"),
    ]

    shown = as_json(datasov("pool", "show", str(pool), "--json", home=lab))
    earned = {r["contribution_id"]: int(r["earned"]) for r in shown["contributions"]}
    assert earned == {ids["alice"]: 9 * 10**18 // 4, ids["bob"]: 27 * 10**18 // 4}  # 90% split 1:3
    paid = as_json(datasov("pool", "claim", str(ids["bob"]), "--json", home=bob))
    assert paid["total"] == str(earned[ids["bob"]])
    assert datasov("pool", "claim", "--json", home=bob, check=False).returncode == EXIT_USAGE

    datasov("pool", "withdraw", str(ids["alice"]), "--yes", home=alice)
    refused = datasov("pool", "accept", str(ids["alice"]), "--json", home=curator, check=False)
    assert refused.returncode == EXIT_REFUSED
    assert as_json(refused)["error"]["name"] == "WrongContributionStatus"
    assert as_json(datasov("pool", "buy", str(pool), "--json", home=lab))["contributions"] == 1  # alice is out
    assert [p["pool_id"] for p in as_json(datasov("pools", "--json", home=lab))] == [pool]
