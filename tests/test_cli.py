"""The CLI driven as a user would: subprocesses, real exit codes and output."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "datasov", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


def test_version_and_help() -> None:
    assert "datasov, version" in run("--version").stdout
    out = run("--help").stdout
    assert "pipeline" in out
    assert "Example" in run("pipeline", "encode", "--help").stdout


def test_encode_decode_file(tmp_path: Path) -> None:
    data = os.urandom(700_000)
    (tmp_path / "data.bin").write_bytes(data)
    shares = tmp_path / "shares"
    result = json.loads(
        run(
            "pipeline",
            "encode",
            str(tmp_path / "data.bin"),
            "-o",
            str(shares),
            "-k",
            "2",
            "-n",
            "5",
            "--json",
        ).stdout
    )
    key_file = Path(result["key_file"])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in shares.iterdir())[:2] == ["manifest.json", "share-000.bin"]
    for i in (0, 1, 2):  # lose three of five shares
        (shares / f"share-{i:03d}.bin").unlink()
    out = tmp_path / "out.bin"
    report = json.loads(
        run("pipeline", "decode", str(shares), "-o", str(out), "--key-file", str(key_file), "--json").stdout
    )
    assert out.read_bytes() == data
    assert report["plaintext_size"] == len(data)

    # a key is never overwritten
    again = run(
        "pipeline",
        "encode",
        str(tmp_path / "data.bin"),
        "-o",
        str(tmp_path / "s2"),
        "--key-file",
        str(key_file),
        check=False,
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_wrong_key_and_too_few_shares_fail_clearly(tmp_path: Path) -> None:
    (tmp_path / "d").write_bytes(b"hello" * 1000)
    shares = tmp_path / "shares"
    run("pipeline", "encode", str(tmp_path / "d"), "-o", str(shares), "-k", "3", "-n", "4")
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    proc = run("pipeline", "decode", str(shares), "-o", str(tmp_path / "o"), "--key-file", str(wrong), check=False)
    assert proc.returncode == 1
    assert "key commitment" in proc.stderr
    assert not (tmp_path / "o").exists()
    for i in (0, 1):
        (shares / f"share-{i:03d}.bin").unlink()
    proc = run(
        "pipeline",
        "decode",
        str(shares),
        "-o",
        str(tmp_path / "o"),
        "--key-file",
        str(shares) + ".key",
        check=False,
    )
    assert proc.returncode == 1
    assert "need 3" in proc.stderr
    assert not (tmp_path / "o").exists()
    assert not (tmp_path / "o.part").exists()


@pytest.mark.parametrize("codec", ["zfec", "isal"])
def test_roundtrip_on_the_sample(codec: str) -> None:
    result = json.loads(
        run("pipeline", "roundtrip", "--codec", codec, "-k", "4", "-n", "9", "--json", "--seed", "3").stdout
    )
    assert result["identical"] is True
    assert result["share_corrupted"] in result["suspect_shares"]


def test_directory_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "corpus"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.bin").write_bytes(os.urandom(5000))
    shares = tmp_path / "shares"
    run("pipeline", "encode", str(src), "-o", str(shares))
    manifest = json.loads((shares / "manifest.json").read_text())
    assert manifest["content"] == "folder"
    assert manifest["version"] == 2
    assert manifest["name"] == "corpus"
    out = tmp_path / "out"
    run("pipeline", "decode", str(shares), "-o", str(out), "--key-file", str(shares) + ".key")
    assert (out / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()


def test_bad_parameters_are_reported(tmp_path: Path) -> None:
    (tmp_path / "d").write_bytes(b"x")
    proc = run(
        "pipeline",
        "encode",
        str(tmp_path / "d"),
        "-o",
        str(tmp_path / "s"),
        "-k",
        "5",
        "-n",
        "5",
        check=False,
    )
    assert proc.returncode == 1
    assert "1 <= k < n" in proc.stderr
    assert not (tmp_path / "s.key").exists()
    assert not (tmp_path / "s").exists()
