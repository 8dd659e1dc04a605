"""The packed calldata of ``proveStorage`` (issue 15: contracts/proofs.py): the layout round-trips,
data that does not parse exactly is refused and changes nothing, and one call's event lists every
proof it made, as the operator ledger and the node's earnings read them."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import errors
from contracts import proofs as packed
from contracts.chain import Chain
from contracts.models import Deal, StorageProof
from erasure import merkle
from market.chain_directory import OperatorLedger
from storage_node.earnings import operator_status

from .conftest import OPERATORS, OWNER, STAKE, Published
from .prover_proofs import proof_for


@settings(max_examples=60, deadline=None)
@given(
    leaves=st.integers(1, 40),
    leaf_size=st.sampled_from([32, 64, 100]),
    last=st.integers(1, 100),
    n=st.integers(1, 12),
    data=st.data(),
)
def test_the_packed_layout_round_trips(leaves: int, leaf_size: int, last: int, n: int, data: st.DataObject) -> None:
    last = min(last, leaf_size)
    share = os.urandom((leaves - 1) * leaf_size + last)
    tree = merkle.MerkleTree(share, leaf_size)
    index = data.draw(st.integers(0, leaves - 1))
    share_index = data.draw(st.integers(0, n - 1))
    roots = [os.urandom(32) for _ in range(n)]
    roots[share_index] = tree.root
    share_proof = merkle.MerkleTree(b"".join(roots), 32).prove(share_index).siblings
    leaf = share[index * leaf_size : (index + 1) * leaf_size]
    proof = StorageProof(7, share_index, 3, leaf, tree.prove(index).siblings, tree.root, share_proof)
    deal = Deal(7, 1, OWNER.address, merkle.commitment_root(roots), leaves, leaf_size, last, n, 0, 9, False, 0, 0, 0)
    encoded = packed.encode([proof])
    assert len(encoded) == 15 + len(leaf) + 32 * (len(proof.leaf_proof) + len(share_proof))
    assert packed.decode(encoded, deal, index) == proof
    with pytest.raises(ValueError, match="wrong length"):
        packed.decode(encoded + b"\0", deal, index)


def test_a_call_holds_1_to_255_proofs_of_one_epoch() -> None:
    proof = StorageProof(1, 0, 5, b"leaf", (), b"\0" * 32, ())
    with pytest.raises(ValueError, match="1 to 255"):
        packed.encode([])
    with pytest.raises(ValueError, match="1 to 255"):
        packed.encode([proof] * 256)
    with pytest.raises(ValueError, match="epochs 5 and 6"):
        packed.encode([proof, StorageProof(2, 0, 6, b"leaf", (), b"\0" * 32, ())])
    with pytest.raises(ValueError, match="packed range"):
        packed.encode([StorageProof(1 << 64, 0, 5, b"leaf", (), b"\0" * 32, ())])
    assert packed.proven_shares(bytes.fromhex("00" * 7 + "01" + "0203")) == [(1, 0x0203)]


async def _deals(chain: Chain, pub: Published, count: int = 2) -> list[int]:
    """``count`` deals over the dataset; OPERATORS[0] accepts share 0 of the first and share 1 of
    the second (the others stay unaccepted: nothing else is proven)."""
    n = pub.manifest.n
    for op in OPERATORS[:n]:
        with contextlib.suppress(errors.AlreadyRegistered):
            await chain.register_operator(op, STAKE)
    first = [op.address for op in OPERATORS[:n]]
    deals = []
    for share, providers in list(enumerate((first, first[-1:] + first[:-1])))[:count]:
        deal = await chain.open_deal(OWNER, pub.dataset_id, providers, epochs=5, fee_per_share_epoch=0)
        await chain.accept_share(OPERATORS[0], deal, share)
        deals.append(deal)
    return deals


async def test_data_that_does_not_parse_exactly_is_refused_and_changes_nothing(
    chain: Chain, published: Published
) -> None:
    (deal,) = await _deals(chain, published, 1)
    epoch = (await chain.get_deal(deal)).start_epoch
    await chain.advance_to_epoch(epoch)
    good = packed.encode([await proof_for(chain, published, deal, 0, epoch)])
    refused = {
        b"": errors.MalformedProofs,  # no header
        good[:4] + b"\0": errors.MalformedProofs,  # no proof
        good + b"\0": errors.MalformedProofs,  # a byte after the last proof
        good[:4] + b"\2" + good[5:]: errors.ContractRevert,  # says two, holds one
        good[:-1]: errors.ProofRejected,  # the last sibling cut short
    }
    for data, error in refused.items():
        with pytest.raises(error):
            await chain.send(chain.storage_market.functions.proveStorage(data), OPERATORS[0])
    assert not await chain.is_proven(deal, 0, epoch)
    await chain.send(chain.storage_market.functions.proveStorage(good), OPERATORS[0])
    assert await chain.is_proven(deal, 0, epoch)


async def test_one_event_per_call_lists_its_proofs(chain: Chain, published: Published) -> None:
    first, second = await _deals(chain, published)
    epoch = (await chain.get_deal(second)).start_epoch
    await chain.advance_to_epoch(epoch)
    proofs = [await proof_for(chain, published, first, 0, epoch), await proof_for(chain, published, second, 1, epoch)]
    receipt = await chain.prove_storage_batch(OPERATORS[0], proofs)
    (event,) = chain.storage_market.events.StorageProofs().process_receipt(receipt)
    assert event["args"]["provider"] == OPERATORS[0].address
    assert event["args"]["epoch"] == epoch
    assert packed.proven_shares(bytes(event["args"]["shares"])) == [(first, 0), (second, 1)]
    assert await chain.is_proven(first, 0, epoch)
    assert await chain.is_proven(second, 1, epoch)
    ledger = OperatorLedger(chain)
    await ledger.update(int(receipt["blockNumber"]))
    assert ledger.of(OPERATORS[0].address).proven == 2
    assert ledger.of(OPERATORS[1].address).proven == 0
    assert (await operator_status(chain, OPERATORS[0].address)).proofs_made == 2
