"""The owner's and the lab's views, driven as users type them against a `datasov devnet up`:
titles, `mine`, `offer update`, `balance`/`withdraw`, `licenses`, `fetch --dataset`, refusals in
words, exit 5 before the key, and the questions asked before irreversible steps."""

from __future__ import annotations

import datetime
from pathlib import Path

from datasov.demo import SAMPLE, _same_tree
from tests.support.cli import wait_servable

from .conftest import as_json, datasov

EXIT_USAGE, EXIT_REFUSED, EXIT_PENDING = 2, 4, 5
TOKEN = 10**18


def SAMPLE_PASS(tmp_path: Path) -> Path:
    path = tmp_path / "backup.pass"
    path.write_text("a backup passphrase\n")
    return path


def homes(devnet: Path, tmp_path: Path) -> tuple[Path, Path]:
    alice, lab = tmp_path / "alice", tmp_path / "lab"
    for home, account in ((alice, "1"), (lab, "2")):
        datasov(
            "init", "--network", str(devnet / "devnet.json"), "--dev-account", account, "--no-passphrase", home=home
        )
    return alice, lab


def test_owner_and_lab_views(devnet: Path, tmp_path: Path) -> None:
    alice, lab = homes(devnet, tmp_path)
    published = as_json(
        datasov(
            "publish",
            str(SAMPLE),
            "--title",
            "tiny corpus",
            "--price",
            "2",
            "--terms",
            "research",
            "--json",
            home=alice,
        )
    )
    dataset = str(published["dataset_id"])
    listed = {str(d["id"]): d for d in as_json(datasov("datasets", "--json", home=lab))}
    assert listed[dataset]["title"] == "tiny corpus"  # from a holder's manifest, checked against the chain
    table = datasov("datasets", home=lab).stdout
    assert "tiny corpus" in table
    assert listed[dataset]["owner"] in table  # the whole address, not a prefix
    assert as_json(datasov("show", dataset, "--json", home=lab))["title"] == "tiny corpus"

    # the lab buys; before the key comes, fetch says so with exit 5, and the refund waits for the deadline
    wait_servable(dataset, lab)
    bought = as_json(datasov("license", "buy", dataset, "--wait", "0", "--json", home=lab))
    license_id = bought["license_id"]
    for args in (("--dataset", dataset), (str(license_id),)):
        early = datasov("fetch", *args, "-o", str(tmp_path / "early"), home=lab, check=False)
        assert early.returncode == EXIT_PENDING, early.stderr
        assert not (tmp_path / "early").exists()
    refund = datasov("license", "refund", str(license_id), "--json", home=lab, check=False)
    assert refund.returncode == EXIT_REFUSED
    error = as_json(refund)["error"]
    assert error["name"] == "RefundNotYetAllowed"
    local = datetime.datetime.fromtimestamp(error["values"]["deadline"]).strftime("%Y-%m-%d %H:%M:%S")
    assert local in refund.stderr
    assert [(lic["license_id"], lic["state"]) for lic in as_json(datasov("licenses", "--json", home=lab))] == [
        (license_id, "waiting for key")
    ]
    row = {str(r["id"]): r for r in as_json(datasov("mine", "--json", home=alice))}[dataset]
    assert (row["title"], row["licenses_sold"], row["keys_pending"], row["consent"]) == ("tiny corpus", 0, 1, "stands")
    assert row["health"]["servable"]

    # an agent run from a home without the data key says which licenses it cannot serve...
    laptop = tmp_path / "laptop"
    datasov("init", "--network", str(devnet / "devnet.json"), "--dev-account", "1", "--no-passphrase", home=laptop)
    skipped = datasov("agent", "run", "--once", "--no-repair", "--json", home=laptop)
    assert {"dataset_id": int(dataset), "licenses_waiting": [license_id]} in as_json(skipped)["cannot_serve"]
    assert f"cannot serve dataset {dataset}" in skipped.stderr
    # ...until the keys are imported from the home that published
    backup = tmp_path / "alice.keys"
    datasov("keys", "export", "-o", str(backup), "--backup-passphrase-file", str(SAMPLE_PASS(tmp_path)), home=alice)
    datasov("keys", "import", str(backup), "--backup-passphrase-file", str(SAMPLE_PASS(tmp_path)), home=laptop)
    served = as_json(datasov("agent", "run", "--once", "--no-repair", "--json", home=laptop))
    assert served["cannot_serve"] == []
    assert [d["outcome"] for d in served["deliveries"] if d["license_id"] == license_id] == ["delivered"]
    fetched = as_json(datasov("fetch", "--dataset", dataset, "-o", str(tmp_path / "copy"), "--json", home=lab))
    assert fetched["license_id"] == license_id
    assert _same_tree(SAMPLE, tmp_path / "copy")
    assert as_json(datasov("licenses", "--json", home=lab))[0]["state"] == "valid"

    # a second license for the same dataset and purpose is not bought without a yes
    again = datasov("license", "buy", dataset, "--wait", "0", home=lab, check=False)
    assert again.returncode == EXIT_USAGE
    assert f"already hold license {license_id}" in again.stderr
    assert len(as_json(datasov("licenses", "--json", home=lab))) == 1

    # a purpose the terms do not allow: in words, and by name in --json
    refused = datasov("license", "buy", dataset, "--purpose", "ai_generative_training", "--json", home=lab, check=False)
    assert refused.returncode == EXIT_REFUSED
    assert f"dataset {dataset} does not allow ai_generative_training" in refused.stderr
    assert as_json(refused)["error"]["name"] == "PurposeNotAllowed"

    # the owner's business
    updated = as_json(datasov("offer", "update", dataset, "--price", "3", "--json", home=alice))
    assert (updated["price_tokens"], updated["terms_version"]) == ("3", listed[dataset]["terms_version"] + 1)
    row = {str(r["id"]): r for r in as_json(datasov("mine", "--json", home=alice))}[dataset]
    assert (row["licenses_sold"], row["revenue_tokens"], row["keys_pending"], row["price_tokens"]) == (1, "2", 0, "3")
    money = as_json(datasov("balance", "--json", home=alice))
    assert int(money["claimable"]) + int(money["in_dispute_window"]) >= 2 * TOKEN
    moved = as_json(datasov("withdraw", "--json", home=alice))
    assert int(moved["wallet"]) == int(money["wallet"]) + int(moved["moved"])

    # irreversible steps ask first, say what they do to licenses, and refuse non-owners before asking
    not_owner = datasov("consent", "revoke", dataset, "--json", home=lab, check=False)
    assert not_owner.returncode == EXIT_REFUSED
    assert as_json(not_owner)["error"]["name"] == "NotDatasetOwner"
    unasked = datasov("consent", "revoke", dataset, home=alice, check=False)
    assert unasked.returncode == EXIT_USAGE
    assert f"1 revocable license(s) end now: [{license_id}]" in unasked.stderr
    assert not {str(d["id"]): d for d in as_json(datasov("datasets", "--json", home=lab))}[dataset][
        "consent_revoked_at"
    ]
    revoked = as_json(datasov("consent", "revoke", dataset, "--yes", "--json", home=alice))
    assert revoked["licenses_ended"] == [license_id]
    assert as_json(datasov("licenses", "--json", home=lab))[0]["state"] == "consent revoked"

    unasked = datasov("storage", "end", dataset, home=alice, check=False)
    assert unasked.returncode == EXIT_USAGE
    assert "Every share is deleted" in unasked.stderr
    ended = as_json(datasov("storage", "end", dataset, "--yes", "--json", home=alice))
    assert sorted(ended["deleted"]) == list(range(10))
