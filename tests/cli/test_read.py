"""`datasov ls` and `datasov cat` as a lab types them against a `datasov devnet up`, and what
`datasov licenses` shows of a license (key delivered, expiry, price paid)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tests.support.cli import wait_servable

from .conftest import as_json, datasov

EXIT_USAGE = 2


@pytest.mark.slow
@pytest.mark.timeout(900)  # a dozen CLI start-ups: slow on a loaded machine
def test_ls_cat_and_ranges(devnet: Path, tmp_path: Path) -> None:
    owner, lab = tmp_path / "owner", tmp_path / "lab"
    for home, account in ((owner, "3"), (lab, "4")):
        datasov(
            "init", "--network", str(devnet / "devnet.json"), "--dev-account", account, "--no-passphrase", home=home
        )
    corpus = tmp_path / "corpus"
    (corpus / "images").mkdir(parents=True)
    labels = b"id,label\n" + b"".join(b"%d,%d\n" % (i, i % 2) for i in range(500))
    (corpus / "labels.csv").write_bytes(labels)
    image = os.urandom(300_000)
    (corpus / "images" / "a.bin").write_bytes(image)
    dataset = str(as_json(datasov("publish", str(corpus), "--price", "1", "--json", home=owner))["dataset_id"])
    wait_servable(dataset, lab)
    license_id = str(as_json(datasov("license", "buy", dataset, "--wait", "0", "--json", home=lab))["license_id"])
    datasov("agent", "run", "--once", "--no-repair", "--json", home=owner)

    rows = as_json(datasov("ls", license_id, "--json", home=lab))
    assert [(r["path"], r["type"]) for r in rows] == [("images", "directory"), ("labels.csv", "file")]
    assert as_json(datasov("ls", license_id, "images", "--json", home=lab))[0]["size"] == len(image)
    assert datasov("cat", license_id, "labels.csv", "--range", "0-8", home=lab).stdout == "id,label\n"
    got = as_json(datasov("cat", license_id, "images/a.bin", "--range", "100000-100099", "--json", home=lab))
    assert (got["start"], got["end"], got["size"]) == (100_000, 100_099, 100)
    assert base64.b64decode(got["base64"]) == image[100_000:100_100]
    bad = datasov("cat", license_id, "labels.csv", "--range", "9-3", home=lab, check=False)
    assert bad.returncode == EXIT_USAGE
    missing = datasov("cat", license_id, "nope.csv", "--json", home=lab, check=False)
    assert missing.returncode == 1
    assert "nope.csv" in as_json(missing)["error"]["message"]

    # the session devnet's dev accounts are shared by the CLI test files: other licenses of this lab may be listed
    row = next(r for r in as_json(datasov("licenses", "--json", home=lab)) if r["license_id"] == int(license_id))
    assert (row["license_id"], row["key_delivered"], row["expires"], row["price"]) == (
        int(license_id),
        True,
        "never",
        str(10**18),
    )
