"""datasov:// through the data tools labs train with, against the loopback network (chain over RPC).

Every tool call runs in a worker thread: the nodes and the chain's RPC server live on the test's
event loop, which must keep serving while the tool blocks on its reads.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import pytest_asyncio

from contracts.terms import Purpose
from datasov import rpc
from datasov.devnet import LocalNetwork
from datasov.fsspec import DatasovFileSystem, ReadOnlyDataset
from datasov.loader import DatasetFiles
from erasure.pipeline import Layout
from market import buyer
from market.keystore import Keystore

from .conftest import Publish

pytestmark = pytest.mark.asyncio
SMALL = Layout(k=3, n=6, block_size=16 * 1024, leaf_size=1024, message_size=16 * 1024 - 16)
PASS = "test passphrase"  # the lab fixture's


@pytest_asyncio.fixture(scope="session")
async def rpc_url(net: LocalNetwork) -> AsyncIterator[str]:
    runner, url = await rpc.serve(net.chain, "127.0.0.1", 0)
    yield url
    await runner.cleanup()


@pytest.fixture
def lab_home(lab: Keystore, net: LocalNetwork, rpc_url: str) -> Path:
    home = lab.path.parent
    (home / "config.json").write_text(json.dumps(net.describe(rpc_url)))
    return home


def corpus(root: Path) -> dict[str, bytes]:
    root.mkdir()
    frames = {
        "labels.csv": pd.DataFrame({"id": range(300), "label": [i % 3 for i in range(300)]}),
        "part-1.csv": pd.DataFrame({"id": range(300, 400), "label": [1] * 100}),
        "part-2.csv": pd.DataFrame({"id": range(400, 450), "label": [2] * 50}),
    }
    for name, frame in frames.items():
        frame.to_csv(root / name, index=False)
    table = pa.table({"x": list(range(20_000)), "y": [f"row {i}" for i in range(20_000)]})
    pq.write_table(table, root / "table.parquet", row_group_size=2_000)
    (root / "images").mkdir()
    for i in range(5):
        (root / "images" / f"{i}.bin").write_bytes(bytes([i]) * (1000 + i))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest_asyncio.fixture
async def licensed(net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path) -> tuple[int, dict[str, bytes]]:
    files = corpus(tmp_path / "corpus")
    offer = await publish(tmp_path / "corpus", layout=SMALL)
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()
    return license_id, files


async def test_ls_info_cat_glob_open_and_read_only(licensed: tuple[int, dict[str, bytes]], lab_home: Path) -> None:
    lid, files = licensed

    def use() -> None:
        fs = DatasovFileSystem(home=str(lab_home), passphrase=PASS, skip_instance_cache=True)
        try:
            top = {row["name"]: row for row in fs.ls(str(lid))}
            assert set(top) == {
                f"{lid}/{n}" for n in ("images", "labels.csv", "part-1.csv", "part-2.csv", "table.parquet")
            }
            assert top[f"{lid}/images"]["type"] == "directory"
            assert fs.info(f"{lid}/labels.csv")["size"] == len(files["labels.csv"])
            assert sorted(fs.glob(f"{lid}/*.csv")) == [f"{lid}/labels.csv", f"{lid}/part-1.csv", f"{lid}/part-2.csv"]
            assert len(fs.find(f"{lid}/images")) == 5
            assert fs.cat_file(f"datasov://{lid}/labels.csv", start=3, end=20) == files["labels.csv"][3:20]
            assert fs.cat_file(f"{lid}/labels.csv", start=-10) == files["labels.csv"][-10:]
            with fs.open(f"{lid}/images/3.bin") as f:
                f.seek(1000)
                assert f.read() == files["images/3.bin"][1000:]
            with pytest.raises(ReadOnlyDataset):
                fs.open(f"{lid}/new.csv", "wb")
            with pytest.raises(ReadOnlyDataset):
                fs.rm(f"{lid}/labels.csv")
            with pytest.raises(FileNotFoundError):
                fs.info(f"{lid}/missing.csv")
        finally:
            fs.close()

    await asyncio.to_thread(use)


async def test_pandas_pyarrow_and_hugging_face_datasets(
    licensed: tuple[int, dict[str, bytes]], lab_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lid, files = licensed
    opts: dict[str, Any] = {"home": str(lab_home), "passphrase": PASS}
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))

    def use() -> None:
        frame = pd.read_csv(f"datasov://{lid}/labels.csv", storage_options=opts)
        pd.testing.assert_frame_equal(frame, pd.read_csv(io.BytesIO(files["labels.csv"])))

        fs = fsspec.filesystem("datasov", **opts)
        table = pq.read_table(f"{lid}/table.parquet", filesystem=fs)  # footer first: random access
        assert table.equals(pq.read_table(io.BytesIO(files["table.parquet"])))

        import datasets

        loaded = datasets.load_dataset(
            "csv", data_files=f"datasov://{lid}/*.csv", storage_options=opts, cache_dir=str(tmp_path / "hf")
        )
        assert sorted(loaded["train"]["id"]) == list(range(450))

    await asyncio.to_thread(use)


async def test_loader_workers_split_the_files(licensed: tuple[int, dict[str, bytes]], lab_home: Path) -> None:
    lid, files = licensed
    opts = {"home": str(lab_home), "passphrase": PASS}

    def use() -> None:
        seen: list[list[str]] = []
        for me in range(3):
            worker = DatasetFiles(f"datasov://{lid}/images/*.bin", storage_options=opts, worker=lambda me=me: (me, 3))
            got = list(worker)
            for path, data in got:
                assert data == files[path.partition("/")[2]]
            seen.append([path for path, _ in got])
        flat = [p for paths in seen for p in paths]
        assert sorted(flat) == [f"{lid}/images/{i}.bin" for i in range(5)]  # each file once, none twice
        assert all(seen)

    await asyncio.to_thread(use)


READ_IN_A_CHILD = """
import hashlib, json, sys
from datasov.fsspec import DatasovFileSystem
fs = DatasovFileSystem(home=sys.argv[1], passphrase=sys.argv[2], skip_instance_cache=True)
with fs.open(sys.argv[3]) as f:
    digest = hashlib.sha256(f.read()).hexdigest()
fs.close()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("web3", "eth_account", "eth_keyfile"))
print(json.dumps({"sha256": digest, "heavy": heavy}))
"""


async def test_a_data_tool_reads_through_the_chain_reader_without_web3(
    licensed: tuple[int, dict[str, bytes]], lab_home: Path
) -> None:
    lid, files = licensed
    child = await asyncio.create_subprocess_exec(  # the network serves on this loop while the child reads
        sys.executable, "-c", READ_IN_A_CHILD, str(lab_home), PASS, f"{lid}/labels.csv", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    assert child.returncode == 0
    assert json.loads(out) == {"sha256": hashlib.sha256(files["labels.csv"]).hexdigest(), "heavy": []}
