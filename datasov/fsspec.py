"""``datasov://<license id>/<path>``: licensed datasets as a read-only fsspec filesystem.

Registered through the ``fsspec.specs`` entry point, so data tools open these URLs directly::

    opts = {"home": "~/.datasov-lab"}          # plus "passphrase" or "passphrase_file" if needed
    pandas.read_csv("datasov://1/labels.csv", storage_options=opts)
    fs = fsspec.filesystem("datasov", **opts); pyarrow.parquet.read_table("1/t.parquet", filesystem=fs)
    datasets.load_dataset("csv", data_files="datasov://1/*.csv", storage_options=opts)

The first path component is the license id; the rest is a path inside the dataset (a single-file
dataset holds one file, named as in its manifest). Each license is opened once per filesystem
instance (:class:`market.reader_sync.SyncDatasetReader`: the license checked on-chain, the key and
manifest verified, then only the segments covering each read are fetched and verified). The
keystore passphrase comes from ``passphrase``, ``passphrase_file``, ``$DATASOV_PASSPHRASE`` or
the home's machine secret, in that order; there is no prompt. Writes raise :class:`ReadOnlyDataset`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsspec.spec import AbstractFileSystem

from .netconfig import CONFIG, MACHINE_SECRET, Network

if (
    TYPE_CHECKING
):  # imported on first read: `import datasov.fsspec` loads no chain client (fsspec imports it at start-up)
    from market.reader import DatasetReader
    from market.reader_sync import SyncDatasetReader

__all__ = ["DatasovFileSystem", "ReadOnlyDataset"]


class ReadOnlyDataset(PermissionError):
    """A write, delete or rename was asked of a licensed dataset (they are read-only)."""


def passphrase(home: Path, given: str | None, passphrase_file: Path | None) -> bytes:
    """The keystore passphrase from the first source that has one (never a prompt: data tools have no terminal)."""
    if given is not None:
        return given.encode()
    if passphrase_file is not None:
        return passphrase_file.read_bytes().rstrip(b"\r\n")
    if env := os.environ.get("DATASOV_PASSPHRASE"):
        return env.encode()
    secret = home / MACHINE_SECRET
    if secret.exists():
        if secret.stat().st_mode & 0o077:
            raise PermissionError(f"{secret} is readable by others: chmod 600 {secret}")
        return secret.read_bytes().strip()
    raise PermissionError(
        f"the keystore in {home} needs a passphrase: pass storage_options passphrase or passphrase_file, "
        "or set DATASOV_PASSPHRASE"
    )


def _reader_error() -> type[Exception]:
    from market.reader import ReaderError

    return ReaderError


def _readonly(*_args: Any, **_kw: Any) -> Any:
    raise ReadOnlyDataset("datasov:// datasets are read-only: a license grants reading, not writing")


class DatasovFileSystem(AbstractFileSystem):  # type: ignore[misc]
    protocol = "datasov"
    root_marker = ""

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        passphrase: str | None = None,
        passphrase_file: str | os.PathLike[str] | None = None,
        timeout: float = 120.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = home or os.environ.get("DATASOV_HOME")
        if not where:
            raise ValueError('datasov:// needs storage_options={"home": ...} (or $DATASOV_HOME)')
        self.home = Path(where).expanduser()
        self._passphrase = passphrase
        self._passphrase_file = Path(passphrase_file) if passphrase_file else None
        self._timeout = timeout
        self._readers: dict[int, SyncDatasetReader] = {}
        self._lock = threading.Lock()

    # -- licenses -----------------------------------------------------------------------------
    def _opener(self, license_id: int) -> Callable[[], Awaitable[tuple[DatasetReader, Callable[[], Awaitable[None]]]]]:
        home, secret_file, given = self.home, self._passphrase_file, self._passphrase

        async def opener() -> tuple[DatasetReader, Callable[[], Awaitable[None]]]:
            from contracts.chain import Chain
            from contracts.errors import ReadOnlyConnection
            from market.keystore import Keystore
            from market.reader import DatasetReader
            from storage_node.client import NodeClient

            network = Network.from_json(json.loads((home / CONFIG).read_text()))
            keystore = Keystore.open(home, passphrase(home, given, secret_file))
            client = NodeClient(timeout=30, retries=2)
            chain: Chain | None = None
            try:  # a reader (no web3) unless a transaction must be sent: a wrong key disputed, a bad piece proven
                for read_only in (True, False):
                    chain = await (Chain.reader if read_only else Chain.connect)(network.rpc, network.deployment)
                    try:
                        reader = await DatasetReader.open(chain, keystore, network.directory, client, license_id)
                        break
                    except ReadOnlyConnection:
                        await chain.close()
                        chain = None
            except BaseException:
                await client.close()
                if chain is not None:
                    await chain.close()
                raise
            assert chain is not None

            async def cleanup() -> None:
                await client.close()
                await chain.close()

            return reader, cleanup

        return opener

    def reader(self, license_id: int) -> SyncDatasetReader:
        """The open reader of a license (opened on first use)."""
        with self._lock:
            found = self._readers.get(license_id)
            if found is None:
                from market.reader_sync import SyncDatasetReader

                found = SyncDatasetReader(self._opener(license_id), timeout=self._timeout)
                self._readers[license_id] = found
            return found

    def close(self) -> None:
        with self._lock:
            readers, self._readers = list(self._readers.values()), {}
        for r in readers:
            r.close()

    def _split(self, path: str) -> tuple[int, str]:
        path = self._strip_protocol(path).strip("/")
        first, _, rest = path.partition("/")
        try:
            license_id = int(first)
        except ValueError:
            raise FileNotFoundError(f"datasov://{path}: the first part must be a license id") from None
        return license_id, rest

    def _info(self, license_id: int, entry: Any) -> dict[str, Any]:
        name = f"{license_id}/{entry.path}"
        if entry.type == "dir":
            return {"name": name, "size": 0, "type": "directory"}
        return {"name": name, "size": entry.size, "type": "file", "sha256": entry.sha256.hex() or None}

    # -- fsspec -------------------------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        license_id, rest = self._split(path)
        r = self.reader(license_id)
        try:
            entry = r.stat(rest) if rest else None
            if entry is not None and entry.type == "file":
                rows = [self._info(license_id, entry)]
            else:
                rows = [self._info(license_id, r.stat(e.path)) for e in r.listdir(rest)]
        except _reader_error() as err:
            raise FileNotFoundError(f"datasov://{license_id}/{rest}: {err}") from err
        return rows if detail else [row["name"] for row in rows]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        license_id, rest = self._split(path)
        if not rest:
            return {"name": str(license_id), "size": 0, "type": "directory"}
        try:
            return self._info(license_id, self.reader(license_id).stat(rest))
        except _reader_error() as err:
            raise FileNotFoundError(f"datasov://{license_id}/{rest}: {err}") from err

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        license_id, rest = self._split(path)
        r = self.reader(license_id)
        try:
            size = r.stat(rest).size
            lo = 0 if start is None else (start if start >= 0 else max(0, size + start))
            hi = size if end is None else (end if end >= 0 else max(0, size + end))
            return r.read_file(rest, lo, max(0, min(hi, size) - lo))
        except _reader_error() as err:
            raise FileNotFoundError(f"datasov://{license_id}/{rest}: {err}") from err

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode != "rb":
            _readonly()
        license_id, rest = self._split(path)
        try:
            return self.reader(license_id).open(rest)
        except _reader_error() as err:
            raise FileNotFoundError(f"datasov://{license_id}/{rest}: {err}") from err

    def ukey(self, path: str) -> str:
        info = self.info(path)
        return str(info.get("sha256") or info["name"])

    mkdir = makedirs = rmdir = _readonly
    rm_file = _rm = rm = _readonly
    pipe_file = put_file = cp_file = mv = touch = _readonly
