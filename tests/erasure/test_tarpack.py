"""Deterministic directory packing and safe unpacking."""

import io
import os
import tarfile
from pathlib import Path

import pytest

from erasure import tarpack
from erasure.errors import ParameterError


def make_tree(root: Path) -> None:
    (root / "b").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "b" / "z.bin").write_bytes(os.urandom(1500))
    (root / "b" / "empty").write_bytes(b"")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("a.txt")
    (root / ("long-" + "x" * 150)).write_text("pax names")


def test_same_tree_same_bytes_regardless_of_times_and_order(tmp_path: Path) -> None:
    make_tree(tmp_path / "one")
    make_tree(tmp_path / "two")
    os.utime(tmp_path / "two" / "a.txt", (1, 1))
    (tmp_path / "two" / "b" / "z.bin").write_bytes((tmp_path / "one" / "b" / "z.bin").read_bytes())
    first = b"".join(tarpack.pack(tmp_path / "one"))
    second = b"".join(tarpack.pack(tmp_path / "two"))
    assert first == second
    assert len(first) == tarpack.packed_size(tmp_path / "one")
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        names = tar.getnames()
        assert names == sorted(names, key=lambda n: n.split("/"))
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in tar.getmembers())


def test_round_trip(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    tarpack.unpack(tarpack.pack(tmp_path / "src"), tmp_path / "out")
    for rel in ["a.txt", "b/z.bin", "b/empty", "run.sh", "long-" + "x" * 150]:
        assert (tmp_path / "out" / rel).read_bytes() == (tmp_path / "src" / rel).read_bytes()
    assert os.readlink(tmp_path / "out" / "link") == "a.txt"
    assert (tmp_path / "out" / "run.sh").stat().st_mode & 0o100


def test_unpack_refuses_escapes(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ParameterError):
        tarpack.unpack([buf.getvalue()], tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_special_files_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ParameterError, match="special"):
        list(tarpack.pack(tmp_path))
