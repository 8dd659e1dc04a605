"""Share files on disk: crash-safe writes, verified reads, quarantine, quota, garbage collection.

Layout under the node's home::

    shares/<dataset>/<index>.share   the share bytes exactly as committed
    shares/<dataset>/<index>.roots   its block roots (32 bytes per block), checked against the root
    shares/<dataset>/manifest.json   the dataset's manifest (its tagged hash is the dataset id)
    tmp/<random>.part                uploads in progress (removed on restart)
    tmp/pending/<deal>-<index>.*     pending shares of draft deals (see pending.py; removed on restart)
    quarantine/                      shares found corrupted on disk, kept for inspection
    index.sqlite                     metadata (see index.py)

An upload streams into ``tmp/``, hashed block by block on the way (off the event loop); at the end
its size and Merkle root must equal what the storage order declared, then it is fsynced, renamed into
place, the directory fsynced, and only then indexed. A crash at any point leaves either the whole
share indexed or nothing visible: :meth:`ShareStore.recover` removes partial files and orphans.
Reads verify every block they serve against the stored block roots; a mismatch quarantines the share.
"""

from __future__ import annotations

import asyncio
import os
import secrets

from erasure import manifest
from erasure.errors import ErasureError

from ..errors import BadManifest, ShareNotFound
from .layout import _fsync_dir, check_address
from .pending import PendingUploads
from .reads import VerifiedReads
from .uploads import Upload

__all__ = ["ShareStore", "Upload", "check_address"]


def parse_manifest(dataset: str, raw: bytes) -> manifest.Manifest:
    """The manifest in ``raw`` if it is well formed and hashes to ``dataset`` (else BadManifest)."""
    check_address(dataset, 0)
    try:
        man = manifest.parse(raw)
    except ErasureError as err:
        raise BadManifest(f"malformed manifest: {err}") from err
    if man.hash().hex() != dataset:
        raise BadManifest("the manifest does not hash to the dataset id")
    return man


class ShareStore(VerifiedReads, PendingUploads):
    """One node's shares: layout and quota (:mod:`.layout`), uploads and recovery (:mod:`.uploads`),
    pending shares of draft deals (:mod:`.pending`),
    verified reads, proofs and quarantine (:mod:`.reads`), garbage collection (:mod:`.gc`), and the
    datasets' manifests (here)."""

    async def put_manifest(self, dataset: str, raw: bytes) -> None:
        """Keep a dataset's manifest next to its shares (content-addressed: its hash is the id).

        Accepted only for a dataset this node holds a share of, so nobody can fill the disk with
        manifests; a manifest already stored is left as it is."""
        man = parse_manifest(dataset, raw)
        held = [r for r in await self.records() if r.dataset == dataset and r.state == "ok"]
        if not held:
            raise ShareNotFound(f"no share of {dataset} is stored here")
        if any(man.share_roots[r.idx] != r.root for r in held if r.idx < man.n):
            raise BadManifest("the manifest's share roots differ from the shares stored here")
        await self.keep_manifest(dataset, man)

    async def keep_manifest(self, dataset: str, man: manifest.Manifest) -> None:
        """Write a manifest the caller checked against a share stored here (unless one is kept)."""
        path = self.manifest_path(dataset)
        if path.exists():
            return

        def write() -> None:
            part = self.tmp_dir / f"{secrets.token_hex(8)}.manifest.part"
            with part.open("wb") as f:
                f.write(man.canonical_bytes())
                f.flush()
                os.fsync(f.fileno())
            os.replace(part, path)
            _fsync_dir(path.parent)

        await asyncio.to_thread(write)

    async def get_manifest(self, dataset: str) -> bytes:
        check_address(dataset, 0)
        try:
            return await asyncio.to_thread(self.manifest_path(dataset).read_bytes)
        except FileNotFoundError as err:
            raise ShareNotFound(f"no manifest for {dataset}") from err
