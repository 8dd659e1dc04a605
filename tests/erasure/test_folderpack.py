"""Folder datasets: files back to back and an encrypted file index found from the manifest."""

import hashlib
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erasure import envelope, folderpack, localfs, pipeline
from erasure.decoding import Decoder, MemoryShareSource
from erasure.errors import FileIndexError
from erasure.manifest import Span
from tests.support.fsyncs import record_fsyncs

LAYOUT = pipeline.Layout(k=2, n=4, block_size=4096, leaf_size=1024, message_size=1000)


def tree(root: Path) -> Path:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.csv").write_bytes(b"x,y\n1,2\n")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 50)
    (root / "sub" / "deep" / "c.txt").write_bytes(b"")
    run = root / "run.sh"
    run.write_bytes(b"#!/bin/sh\n")
    run.chmod(0o755)
    (root / "link").symlink_to("a.csv")
    return root


def encode(root: Path) -> tuple[pipeline.EncodeResult, list[bytes], bytes]:
    src = localfs.open_dataset(root)
    sinks = [io.BytesIO() for _ in range(LAYOUT.n)]
    key = envelope.new_data_key()
    result = pipeline.encode(
        src.chunks, sinks, key=key, layout=LAYOUT, name=src.name, content=src.content, index=src.index
    )
    assert result.manifest.plaintext_size == src.size
    return result, [s.getvalue() for s in sinks], key


def test_folder_round_trip_and_index_at_the_end(tmp_path: Path) -> None:
    root = tree(tmp_path / "src")
    result, shares, key = encode(root)
    man = result.manifest
    assert man.content == "folder"
    assert man.index is not None
    assert man.index.offset + man.index.size == man.plaintext_size
    plain = b"".join(Decoder(man, key, {i: MemoryShareSource(s, 4096, 1024) for i, s in enumerate(shares)}))
    index = folderpack.parse_index(plain[man.index.offset :], man.index)
    b = index.get("sub/b.bin")
    assert plain[b.offset : b.offset + b.size] == (root / "sub" / "b.bin").read_bytes()
    assert b.sha256 == hashlib.sha256((root / "sub" / "b.bin").read_bytes()).digest()
    assert index.get("run.sh").mode == 0o755
    assert index.get("link").target == "a.csv"
    assert sorted(e.path for e in index.children("")) == ["a.csv", "empty", "link", "run.sh", "sub"]
    assert b"a.csv" not in b"".join(shares)  # names are encrypted with the data

    sources = {i: MemoryShareSource(s, 4096, 1024) for i, s in enumerate(shares)}
    out = tmp_path / "out"
    localfs.write_dataset(man.content, iter(Decoder(man, key, sources)), out, index=man.index)
    for path in root.rglob("*"):
        twin = out / path.relative_to(root)
        if path.is_symlink():
            assert twin.is_symlink()
            assert str(twin.readlink()) == "a.csv"
        elif path.is_file():
            assert twin.read_bytes() == path.read_bytes()
            assert twin.stat().st_mode & 0o777 == path.stat().st_mode & 0o777
        else:
            assert twin.is_dir()


def test_packing_is_deterministic(tmp_path: Path) -> None:
    one, two = folderpack.FolderPack(tree(tmp_path / "one")), folderpack.FolderPack(tree(tmp_path / "two"))
    assert b"".join(one.chunks()) == b"".join(two.chunks())
    assert one.span == two.span


def _index(entries: list[dict[str, object]]) -> bytes:
    return json.dumps({"format": "datasov-file-index", "version": 1, "entries": entries}).encode()


GOOD = {"path": "a", "type": "file", "offset": 0, "size": 3, "sha256": "00" * 32, "mode": 420}


@pytest.mark.parametrize(
    "entries",
    [
        [{**GOOD, "path": "../a"}],
        [{**GOOD, "path": "/a"}],
        [{**GOOD, "path": "d/a"}],  # before its directory
        [{**GOOD, "offset": 1}],  # a gap
        [{**GOOD, "size": 4}],  # runs into the index
        [GOOD, GOOD],  # repeated
        [{**GOOD, "mode": 0o4755}],
        [{**GOOD, "sha256": "zz" * 32}],
        [{**GOOD, "type": "fifo"}],
        [{**GOOD, "extra": 1}],
    ],
)
def test_index_parser_is_strict(entries: list[dict[str, object]]) -> None:
    raw = _index(entries)
    with pytest.raises(FileIndexError):
        folderpack.parse_index(raw, Span(3, len(raw)))


def test_index_of_the_wrong_length_and_missing_paths_are_named() -> None:
    raw = _index([GOOD])
    assert folderpack.parse_index(raw, Span(3, len(raw))).get("a").size == 3
    with pytest.raises(FileIndexError):
        folderpack.parse_index(raw, Span(3, len(raw) + 1))
    with pytest.raises(FileIndexError):
        folderpack.parse_index(raw, Span(3, len(raw))).get("b")
    with pytest.raises(FileIndexError):
        folderpack.normalise("a/../../b")


names = st.text(alphabet="abcé_-.0", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(st.lists(names, min_size=1, max_size=3).map("/".join), st.binary(max_size=300)))
def test_any_tree_packs_to_an_index_that_finds_every_file(tmp_path_factory: pytest.TempPathFactory, files) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("tree")
    written: dict[str, bytes] = {}
    for rel, data in files.items():
        path = root / rel
        if any(p == path or p in path.parents for p in map(root.joinpath, written)):
            continue  # a file where a directory would go
        if path.exists() or any((root / w) in path.parents or path in (root / w).parents for w in written):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[rel] = data
    pack = folderpack.FolderPack(root)
    plain = b"".join(pack.chunks())
    assert len(plain) == pack.size
    index = folderpack.parse_index(plain[pack.span.offset :], pack.span)
    for rel, data in written.items():
        entry = index.get(rel)
        assert plain[entry.offset : entry.offset + entry.size] == data


def test_an_unpacked_folder_is_on_disk_when_the_write_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file and directory of a fetched folder is fsynced, and the directory it is renamed
    into, as a fetched single file is (the folder path did not sync anything)."""
    root = tree(tmp_path / "src")
    result, shares, key = encode(root)
    man = result.manifest
    synced = record_fsyncs(monkeypatch)
    sources = {i: MemoryShareSource(s, 4096, 1024) for i, s in enumerate(shares)}
    out = tmp_path / "out"
    localfs.write_dataset(man.content, iter(Decoder(man, key, sources)), out, index=man.index)
    part = str(out.with_name(out.name + ".part"))  # the tree is synced where it is built, then renamed
    for path in root.rglob("*"):
        if not path.is_symlink():
            assert f"{part}/{path.relative_to(root)}" in synced
    assert part in synced
    assert str(tmp_path) in synced  # the rename into place
