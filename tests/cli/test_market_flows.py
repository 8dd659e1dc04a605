"""The marketplace CLI driven as a user would against the session's `datasov devnet up --in-process`
(tests/cli/conftest.py): the commands an owner and a lab type, with their exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datasov.demo import SAMPLE, _same_tree
from tests.support.cli import wait_servable

from .conftest import datasov

EXIT_REFUSED, EXIT_INTEGRITY = 4, 6


def test_owner_and_lab_on_a_devnet(devnet: Path, tmp_path: Path) -> None:
    alice, lab = tmp_path / "alice", tmp_path / "lab"
    network = str(devnet / "devnet.json")
    for home, account in ((alice, "3"), (lab, "4")):  # 1 and 2: test_owner_and_lab counts their licenses
        out = json.loads(
            datasov(
                "init", "--network", network, "--dev-account", account, "--no-passphrase", "--json", home=home
            ).stdout
        )
        assert out["created"]
        assert oct((home / "keystore.json").stat().st_mode & 0o777) == "0o600"
        assert oct((home / "machine.secret").stat().st_mode & 0o777) == "0o600"

    published = json.loads(datasov("publish", str(SAMPLE), "--price", "2.5", "--json", home=alice).stdout)
    dataset = str(published["dataset_id"])
    assert len(published["nodes"]) == 10
    listing = json.loads(datasov("datasets", "--json", home=lab).stdout)
    assert [d["price_tokens"] for d in listing if str(d["id"]) == dataset] == ["2.5"]
    shown = json.loads(datasov("show", dataset, "--json", home=lab).stdout)
    assert sum(s["online"] for s in shown["shares"]) == 10

    wait_servable(dataset, lab)
    bought = json.loads(datasov("license", "buy", dataset, "--wait", "0", "--json", home=lab).stdout)
    license_id = str(bought["license_id"])
    assert not bought["key_delivered"]
    decisions = json.loads(datasov("agent", "run", "--once", "--json", home=alice).stdout)["deliveries"]
    assert [d["outcome"] for d in decisions if str(d["license_id"]) == license_id] == ["delivered"]

    fetched = json.loads(datasov("fetch", license_id, "-o", str(tmp_path / "copy"), "--json", home=lab).stdout)
    assert fetched["bytes"] == published["size"]
    assert _same_tree(SAMPLE, tmp_path / "copy")
    again = datasov("fetch", license_id, "-o", str(tmp_path / "copy"), home=lab, check=False)
    assert again.returncode == 1
    assert "already exists" in again.stderr

    receipt = tmp_path / "receipt.json"
    datasov("audit", license_id, "-o", str(receipt), home=lab)
    verified = json.loads(datasov("audit", "verify", str(receipt), "--json", home=lab).stdout)
    assert verified["ok"]
    assert verified["consent_stands"]
    forged = json.loads(receipt.read_text())
    forged["dataset"]["commitment_root"] = "00" * 32
    receipt.write_text(json.dumps(forged))
    bad = datasov("audit", "verify", str(receipt), home=lab, check=False)
    assert bad.returncode == EXIT_INTEGRITY
    assert "INVALID" in bad.stdout

    not_owner = datasov("consent", "revoke", dataset, "--yes", "--json", home=lab, check=False)
    assert not_owner.returncode == EXIT_REFUSED
    assert json.loads(not_owner.stdout)["error"]["name"] == "NotDatasetOwner"
    assert f"dataset {dataset} belongs to another account" in not_owner.stderr
    datasov("consent", "revoke", dataset, "--yes", home=alice)
    refused = datasov("license", "buy", dataset, "--wait", "0", "--json", home=lab, check=False)
    assert refused.returncode == EXIT_REFUSED
    assert json.loads(refused.stdout)["error"]["name"] == "ConsentIsRevoked"
    assert f"the owner of dataset {dataset} has revoked consent" in refused.stderr

    rpc = json.loads((devnet / "devnet.json").read_text())["rpc"]
    statuses = [
        json.loads(
            datasov(
                "node",
                "status",
                "--home",
                str(node_home),
                "--rpc",
                rpc,
                "--deployment",
                str(devnet / "deployment.json"),
                "--json",
            ).stdout
        )
        for node_home in sorted((devnet / "nodes").iterdir())[:2]
    ]
    assert all(isinstance(s["shares"], int) and s["used"] <= s["capacity"] for s in statuses)
    assert all(s["chain"]["registered"] and int(s["chain"]["stake"]) > 0 for s in statuses)
    assert all(s["chain"]["slashed"] == "0" for s in statuses)  # nobody missed a proof

    ended = json.loads(datasov("storage", "end", dataset, "--yes", "--json", home=alice).stdout)
    assert sorted(ended["deleted"]) == list(range(10))


@pytest.mark.slow
@pytest.mark.timeout(600)  # a dozen CLI processes after the devnet starts; slow on a loaded machine
def test_lab_files_a_training_mix_on_a_devnet(devnet: Path, tmp_path: Path) -> None:
    """The owner's `show --json` carries its consent as TDMRep and aipref too; the lab writes a
    receipt stating the files it read, exports it in each format, and `audit verify` checks the
    SPDX and Croissant output against the chain (a tampered copy: exit 6, the field named)."""
    owner, lab = tmp_path / "owner", tmp_path / "lab"
    network = str(devnet / "devnet.json")
    for home, account in ((owner, "3"), (lab, "4")):
        datasov("init", "--network", network, "--dev-account", account, "--no-passphrase", home=home)
    dataset = str(
        json.loads(datasov("publish", str(SAMPLE), "--price", "1", "--json", home=owner).stdout)["dataset_id"]
    )
    forms = json.loads(datasov("show", dataset, "--json", home=owner).stdout)["consent_forms"]
    assert forms["tdmrep"]["tdm-reservation"] == 1
    assert forms["tdmrep"]["policy"]["profile"] == "http://www.w3.org/ns/tdmrep"
    assert forms["aipref"]["content_usage"] == "train-ai=y, train-genai=y"
    assert forms["cawg"]["label"] == "cawg.training-mining"
    wait_servable(dataset, lab)
    license_id = str(
        json.loads(datasov("license", "buy", dataset, "--wait", "0", "--json", home=lab).stdout)["license_id"]
    )
    datasov("agent", "run", "--once", home=owner)
    files = tmp_path / "files.json"
    files.write_text(json.dumps([{"path": "texts/doc-0.txt", "size": 3, "sha256": "ab" * 32}]))
    receipt = tmp_path / "receipt.json"
    datasov("audit", "receipt", license_id, "--files", str(files), "-o", str(receipt), home=lab)
    assert json.loads(receipt.read_text())["read"]["files"][0]["path"] == "texts/doc-0.txt"
    for fmt in ("spdx3", "eu-ai-act"):  # Croissant: the same code path, checked in tests/e2e
        doc = tmp_path / f"mix.{fmt}.json"
        args = ("audit", "export", str(receipt), "--format", fmt, "--model", "lab-llm", "-o", str(doc), "--json")
        written = json.loads(datasov(*args, home=lab).stdout)["written"]
        assert written[0] == str(doc)
        if fmt == "eu-ai-act":
            assert Path(written[1]).read_text().startswith("# Training content summary of lab-llm")
            continue
        verified = json.loads(datasov("audit", "verify", str(doc), "--json", home=lab).stdout)
        assert (verified["ok"], verified["document"]) == (True, fmt)
    doc = tmp_path / "mix.spdx3.json"
    forged = json.loads(doc.read_text())
    next(e for e in forged["@graph"] if e["type"] == "dataset_DatasetPackage")["dataset_datasetSize"] += 1
    doc.write_text(json.dumps(forged))
    bad = datasov("audit", "verify", str(doc), home=lab, check=False)
    assert bad.returncode == EXIT_INTEGRITY
    assert "plaintext_size is" in bad.stdout
    tampered = json.loads(receipt.read_text())
    tampered["license"]["purpose"] = "data_mining"
    receipt.write_text(json.dumps(tampered))
    refused = datasov(
        "audit", "export", str(receipt), "--format", "croissant", "-o", str(doc), "--json", home=lab, check=False
    )
    assert refused.returncode == EXIT_INTEGRITY  # export only from receipts that verify
    assert "does not verify" in json.loads(refused.stdout)["error"]["message"]
