"""Storage-proof gas over leaf sizes and batch sizes at one share size (``python -m bench.gas --proofs``).

Each proof is of a different deal over its own commitment root (so nothing is shared between the
proofs of a batch but the transaction: the slots each proof reads are cold, as for a node proving
the shares of many datasets). Shares are synthetic (every leaf the same random bytes; see
:mod:`bench.gas`), so a share of any size costs nothing to build and its proofs verify on-chain
exactly as a node's would.

A share's revealed-leaf words (at most 4, ``RevealedLeaves.WORDS``) are written by its first proofs,
at 20,000 gas each instead of 2,900; every later proof rewrites one. The table's figures are that
steady state: the bench reads, before each proof, whether the word it writes is still empty, and
takes 17,100 off each such proof (the difference of the two SSTORE prices, nothing else differs);
the first-proof price is that plus 17,100.
"""

from __future__ import annotations

import os

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from web3 import Web3

from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.models import StorageProof
from contracts.terms import TRAINING_ALLOWED
from erasure import merkle

FRESH_WORD = 20_000 - 2_900  # SSTORE zero -> non-zero minus non-zero -> non-zero (EIP-2200/2929)
REVEALED_SLOT = 7  # StorageMarket._revealed (after ReentrancyGuard._status, dealCount, _deals, _shares,
#                    _operators, balances, burned): mapping(root => mapping(share => mapping(word => bits)))
CLASSES, PER_WORD = 1020, 255  # RevealedLeaves.CLASSES, .PER_WORD


def synthetic_share(leaf: bytes, depth: int) -> tuple[bytes, list[bytes]]:
    """Root and the (identical for every leaf) proof path of a tree of 2^depth equal leaves."""
    node = merkle.leaf_hash(leaf)
    path = []
    for _ in range(depth):
        path.append(node)
        node = merkle.node_hash(node, node)
    return node, path


def revealed_slot(commitment_root: bytes, share: int, word: int) -> int:
    outer = Web3.keccak(commitment_root + REVEALED_SLOT.to_bytes(32, "big"))
    inner = Web3.keccak(encode(["uint256"], [share]) + outer)
    return int.from_bytes(Web3.keccak(encode(["uint256"], [word]) + inner), "big")


async def fresh_word(chain: Chain, commitment_root: bytes, leaf_index: int, leaf_count: int) -> bool:
    """Will the proof of ``leaf_index`` write a revealed-leaf word that is still zero?"""
    c = leaf_index % min(leaf_count, CLASSES)
    slot = revealed_slot(commitment_root, 0, c // PER_WORD)
    value = await chain.w3.eth.get_storage_at(chain.deployment.storage_market, slot)
    return int.from_bytes(bytes(value), "big") == 0


async def open_share(
    chain: Chain, owner: LocalAccount, provider: LocalAccount, other: LocalAccount, leaf: bytes, depth: int
) -> tuple[int, StorageProof]:
    """A dataset of 2 synthetic shares of 2^depth leaves, a deal over it with ``provider`` on share 0
    (accepted), and the proof template (deal, share 0; epoch 0 to be replaced)."""
    share_root, path = synthetic_share(leaf, depth)
    roots = [share_root, os.urandom(32)]  # its own commitment root
    share_proof = merkle.MerkleTree(b"".join(roots), 32).prove(0).siblings
    dataset = await chain.register_dataset(
        owner,
        manifest_hash=os.urandom(32),
        commitment_root=merkle.commitment_root(roots),
        key_commitment=os.urandom(32),
        key_salt=os.urandom(32),
        plaintext_size=1 << 30,
        share_size=len(leaf) << depth,
        leaf_size=len(leaf),
        k=1,
        n=2,
        price=5 * TOKEN,
        terms=TRAINING_ALLOWED,
    )
    deal = await chain.open_deal(owner, dataset, [provider.address, other.address], epochs=10, fee_per_share_epoch=0)
    await chain.accept_share(provider, deal, 0)
    return deal, StorageProof(deal, 0, 0, leaf, tuple(path), share_root, share_proof)


async def calldata_gas(chain: Chain, tx_hash: bytes) -> int:
    data = bytes((await chain.w3.eth.get_transaction(tx_hash))["input"])
    return sum(16 if b else 4 for b in data)


async def proof_table(
    chain: Chain,
    owner: LocalAccount,
    provider: LocalAccount,
    other: LocalAccount,
    *,
    share_bytes: int,
    leaf_sizes: tuple[int, ...],
    batches: tuple[int, ...],
) -> list[dict[str, int]]:
    """One row per (leaf size, batch size): steady-state gas per proof, its calldata part, and the
    first-proof price."""
    rows = []
    for leaf_size in leaf_sizes:
        depth = (share_bytes // leaf_size).bit_length() - 1
        leaf = os.urandom(leaf_size)
        for batch in batches:
            opened = [await open_share(chain, owner, provider, other, leaf, depth) for _ in range(batch)]
            epoch = await chain.current_epoch() + 1
            await chain.advance_to_epoch(epoch)
            proofs, fresh = [], 0
            for deal, template in opened:
                d = await chain.get_deal(deal)
                index = await chain.challenge_leaf(deal, 0, epoch)
                fresh += await fresh_word(chain, d.commitment_root, index, d.leaf_count)
                proofs.append(StorageProof(deal, 0, epoch, *_rest(template)))
            if batch == 1:
                receipt = await chain.prove_storage(provider, proofs[0])
            else:
                receipt = await chain.prove_storage_batch(provider, proofs)
            gas = int(receipt["gasUsed"])
            data = await calldata_gas(chain, receipt["transactionHash"])
            per = (gas - fresh * FRESH_WORD) // batch
            rows.append(
                {
                    "leaf_size": leaf_size,
                    "depth": depth,
                    "batch": batch,
                    "gas_per_proof": per,
                    "calldata_per_proof": data // batch,
                    "first_proof": per + FRESH_WORD,
                    "fresh_words": fresh,
                }
            )
    return rows


def _rest(p: StorageProof) -> tuple[bytes, tuple[bytes, ...], bytes, tuple[bytes, ...]]:
    return p.leaf, p.leaf_proof, p.share_root, p.share_proof


def print_table(rows: list[dict[str, int]], share_bytes: int, default_leaf: int) -> None:
    print(f"storage proofs, shares of {share_bytes >> 20} MiB, steady state (revealed words written); per proof:")
    print("  leaf    depth  batch     gas  = x limit   calldata   first proof")
    for r in rows:
        limit = 60_000 if r["batch"] == 1 else 30_000
        mark = "  <- default leaf size" if r["leaf_size"] == default_leaf and r["batch"] in (1, 16) else ""
        print(
            f"  {r['leaf_size']:>5} B  {r['depth']:>4}  {r['batch']:>5}  {r['gas_per_proof']:>7,}"
            f" = {r['gas_per_proof'] / limit:.2f}x {limit // 1000}k  {r['calldata_per_proof']:>8,}"
            f"   {r['first_proof']:>9,}{mark}"
        )
