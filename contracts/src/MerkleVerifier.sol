// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice The datasov Merkle tree (DESIGN.md), verified with the sha256 precompile:
/// leaf = SHA256(0x00 || leaf bytes), node = SHA256(0x01 || left || right), and an odd node at the
/// end of a level moves up unchanged, which is why verification needs the leaf count.
library MerkleVerifier {
    /// @dev SHA256(0x00 || leaf).
    function leafHash(bytes calldata leaf) internal view returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x00)
            calldatacopy(add(ptr, 1), leaf.offset, leaf.length)
            if iszero(staticcall(gas(), 0x02, ptr, add(leaf.length, 1), 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @dev SHA256(0x00 || 32-byte value): how a share root enters the commitment tree.
    function leafHash32(bytes32 value) internal view returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x00)
            mstore(add(ptr, 1), value)
            if iszero(staticcall(gas(), 0x02, ptr, 33, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @dev SHA256(0x01 || left || right).
    function nodeHash(bytes32 left, bytes32 right) internal view returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            mstore(add(ptr, 1), left)
            mstore(add(ptr, 33), right)
            if iszero(staticcall(gas(), 0x02, ptr, 65, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @notice Root implied by a leaf digest at `index` of `count` leaves and its siblings (bottom-up).
    /// @return root the recomputed root; ok false if the proof has the wrong number of siblings.
    /// @dev One assembly loop (the Solidity version cost ~730 gas a level, this ~300): the node
    /// preimage 0x01 || left || right is built in free memory and hashed by the sha256 precompile.
    function computeRoot(bytes32 digest, uint256 index, uint256 count, bytes32[] calldata siblings)
        internal
        view
        returns (bytes32 root, bool ok)
    {
        if (index >= count) return (bytes32(0), false);
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            let left := add(ptr, 1)
            let right := add(ptr, 33)
            let next := siblings.offset
            let end := add(siblings.offset, shl(5, siblings.length))
            ok := 1
            for {} gt(count, 1) {} {
                let odd := and(index, 1)
                if or(odd, lt(add(index, 1), count)) {
                    if eq(next, end) {
                        ok := 0
                        break
                    }
                    let sibling := calldataload(next)
                    next := add(next, 0x20)
                    switch odd
                    case 1 {
                        mstore(left, sibling)
                        mstore(right, digest)
                    }
                    default {
                        mstore(left, digest)
                        mstore(right, sibling)
                    }
                    if iszero(staticcall(gas(), 0x02, ptr, 65, 0x00, 0x20)) { revert(0, 0) }
                    digest := mload(0x00)
                }
                index := shr(1, index)
                count := shr(1, add(count, 1))
            }
            if iszero(eq(next, end)) { ok := 0 }
            root := digest
        }
        if (!ok) root = bytes32(0);
    }

    /// @dev SHA256(0x00 || the `length` calldata bytes at `at`).
    function leafHashAt(uint256 at, uint256 length) internal view returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x00)
            calldatacopy(add(ptr, 1), at, length)
            if iszero(staticcall(gas(), 0x02, ptr, add(length, 1), 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @notice Root implied by a leaf digest at `index` of `count` leaves and its siblings read from
    /// calldata at `at`, bottom-up, as many as the tree needs (none for an odd last node).
    /// @return root the recomputed root; next the calldata offset after the last sibling read.
    /// @dev For packed proofs (`StorageMarket.proveStorage`): the caller checks that what it parsed
    /// ends exactly at the end of its data, so siblings read past it make the whole call revert.
    function computeRootAt(bytes32 digest, uint256 index, uint256 count, uint256 at)
        internal
        view
        returns (bytes32 root, uint256 next)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            let left := add(ptr, 1)
            next := at
            for {} gt(count, 1) {} {
                let odd := and(index, 1)
                if or(odd, lt(add(index, 1), count)) {
                    let side := shl(5, odd) // the digest goes right of its sibling when odd
                    mstore(add(left, side), digest)
                    mstore(sub(add(left, 0x20), side), calldataload(next))
                    next := add(next, 0x20)
                    // no success check: the precompile fails only out of gas, leaving the last
                    // digest at 0x00, so the root comes out wrong and the caller refuses it
                    pop(staticcall(gas(), 0x02, ptr, 65, 0x00, 0x20))
                    digest := mload(0x00)
                }
                index := shr(1, index)
                count := shr(1, add(count, 1))
            }
            root := digest
        }
    }

    /// @notice True if `leaf` is leaf `index` of a tree of `count` leaves with root `root`.
    function verify(bytes32 root, bytes calldata leaf, uint256 index, uint256 count, bytes32[] calldata siblings)
        internal
        view
        returns (bool)
    {
        (bytes32 r, bool ok) = computeRoot(leafHash(leaf), index, count, siblings);
        return ok && r == root;
    }
}
