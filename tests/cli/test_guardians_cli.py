"""Key guardians from the command line, against `datasov devnet up` (whose nodes are guardians):
publish --guardians, a sale with no owner agent running, `datasov guardians`, `guardians replace`."""

from __future__ import annotations

from pathlib import Path

from datasov.demo import SAMPLE
from tests.support.cli import wait_servable

from .conftest import as_json, datasov


def test_publish_with_guardians_and_sell_while_the_owner_is_offline(devnet: Path, tmp_path: Path) -> None:
    owner, lab = tmp_path / "owner", tmp_path / "lab"
    for home, account in ((owner, "3"), (lab, "4")):
        datasov(
            "init", "--network", str(devnet / "devnet.json"), "--dev-account", account, "--no-passphrase", home=home
        )
    published = as_json(
        datasov(
            "publish",
            str(SAMPLE),
            "--price",
            "1",
            "-k",
            "2",
            "-n",
            "4",
            "--guardians",
            "5",
            "--threshold",
            "3",
            "--json",
            home=owner,
        )
    )
    dataset = str(published["dataset_id"])
    chosen = published["guardians"]["guardians"]
    assert len(set(chosen)) == 5
    # no `datasov agent run` anywhere: the devnet's guardians deliver
    wait_servable(dataset, lab)
    bought = as_json(datasov("license", "buy", dataset, "--wait", "120", "--json", home=lab))
    assert bought["key_delivered"]
    shown = as_json(datasov("guardians", dataset, "--json", home=owner))
    assert [r["guardian"] for r in shown["guardians"]] == chosen
    assert shown["threshold"] == 3
    assert sum(r["deliveries"] for r in shown["guardians"]) == 3
    assert all(r["staked"] and r["bad_pieces"] == 0 for r in shown["guardians"])
    text = datasov("guardians", dataset, home=owner).stdout
    assert "3-of-5" in text
    replaced = as_json(
        datasov("guardians", "replace", dataset, "--guardians", "4", "--threshold", "2", "--json", home=owner)
    )
    assert replaced["epoch"] == 2
    assert len(replaced["guardians"]) == 4
    bad = datasov("publish", str(SAMPLE), "--guardians", "3", "--json", home=owner, check=False)
    assert bad.returncode == 2  # --threshold is required with --guardians
