"""Storage proofs as the node's prover builds them: the dataset's shares uploaded into a real
share store (with the publisher's share -> commitment paths), then :meth:`Prover.build`."""

from __future__ import annotations

import atexit
import tempfile
from dataclasses import replace
from pathlib import Path

from contracts.chain import Chain
from contracts.models import StorageProof
from market.publisher import share_proof
from storage_node.prover import Prover
from storage_node.store.index import ShareRecord
from storage_node.store.shares import ShareStore

from .conftest import OPERATORS, Published

_HOME = tempfile.TemporaryDirectory(prefix="datasov-prover-shares-")
_HELD: dict[bytes, tuple[ShareStore, dict[int, ShareRecord]]] = {}


@atexit.register
def _close_stores() -> None:
    for store, _ in _HELD.values():
        store.close()
    _HOME.cleanup()


async def _held(pub: Published) -> tuple[ShareStore, dict[int, ShareRecord]]:
    """The dataset's shares stored in a node's share store, uploaded as the publisher's orders do
    (with the publisher's share -> commitment path), once per dataset."""
    man = pub.manifest
    key = man.hash()
    if key not in _HELD:
        store = ShareStore(Path(_HOME.name) / key.hex()[:16], capacity=1 << 26)
        records: dict[int, ShareRecord] = {}
        for i, share in enumerate(pub.shares):
            upload = await store.begin(
                key.hex(),
                i,
                root=man.share_roots[i],
                size=len(share),
                leaf_size=man.leaf_size,
                block_size=man.block_size,
                share_proof=share_proof(man.share_roots, i),
            )
            await upload.write(share)
            records[i] = await upload.commit()
        _HELD[key] = (store, records)
    return _HELD[key]


async def proof_for(chain: Chain, pub: Published, deal: int, share: int, epoch: int) -> StorageProof:
    """The proof the node's prover builds (and checks) for ``share`` of ``deal`` in ``epoch``."""
    store, records = await _held(pub)
    leaf = await chain.challenge_leaf(deal, share, epoch)
    return await Prover(chain, OPERATORS[share], store).build(replace(records[share], deal_id=deal), epoch, leaf)
