"""Dataset titles for listings: the ``name`` in each dataset's manifest.

The chain holds only the manifest's hash, so the title comes from a holder's copy of the manifest,
checked against that hash (a holder cannot make up a title), and is cached in ``HOME/titles.json``
by manifest hash (a manifest never changes). A dataset whose holders do not answer has no title
(``None``) until one does; such a miss is remembered for ``RETRY_AFTER`` seconds in the process (a
listing page that is loaded again does not wait on the same silent holders each time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.errors import ContractsError
from market.errors import MarketError
from storage_node.errors import NodeError

if TYPE_CHECKING:
    from contracts.chain import Chain
    from market.directory import Directory

CACHE = "titles.json"
RETRY_AFTER = 60.0  # seconds before a dataset whose holders did not answer is asked again

_misses: dict[str, float] = {}  # manifest hash (hex) -> when its holders last failed to answer
_clock = time.monotonic


def _load(home: Path) -> dict[str, str]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((home / CACHE).read_text())
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items()}
    return {}


def remember(home: Path, manifest_hash: bytes, title: str) -> None:
    """Note a title (``datasov publish`` knows its own)."""
    cache = _load(home)
    cache[manifest_hash.hex()] = title
    with contextlib.suppress(OSError):
        home.mkdir(parents=True, exist_ok=True)
        (home / CACHE).write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")


def _missed_lately(manifest_hash: bytes, now: float) -> bool:
    missed = _misses.get(manifest_hash.hex())
    return missed is not None and now - missed < RETRY_AFTER


async def titles(
    chain: Chain, directory: Directory, home: Path, manifests: dict[int, bytes], *, per_node: float = 3.0
) -> dict[int, str | None]:
    """dataset id -> title, for datasets given as id -> manifest hash."""
    cache = _load(home)
    out: dict[int, str | None] = {i: cache.get(h.hex()) for i, h in manifests.items()}
    now = _clock()
    missing = [i for i, title in out.items() if title is None and not _missed_lately(manifests[i], now)]
    if not missing:
        return out
    from market import buyer  # the fetch path and aiohttp: only when a title is not cached yet
    from storage_node.client import NodeClient

    async with NodeClient(retries=1, timeout=per_node) as client:

        async def one(dataset_id: int) -> None:
            try:
                urls = (await buyer.holders(chain, directory, dataset_id)).urls
                man = await asyncio.wait_for(buyer.fetch_manifest(client, urls, manifests[dataset_id]), per_node * 2)
            except (MarketError, ContractsError, NodeError, TimeoutError):
                _misses[manifests[dataset_id].hex()] = _clock()
                return
            _misses.pop(manifests[dataset_id].hex(), None)
            out[dataset_id] = man.name
            remember(home, manifests[dataset_id], man.name)

        await asyncio.gather(*(one(i) for i in missing))
    return out
