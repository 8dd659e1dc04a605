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
    function computeRoot(bytes32 digest, uint256 index, uint256 count, bytes32[] calldata siblings)
        internal
        view
        returns (bytes32 root, bool ok)
    {
        if (index >= count) return (bytes32(0), false);
        uint256 used;
        while (count > 1) {
            if (index & 1 == 1) {
                if (used == siblings.length) return (bytes32(0), false);
                digest = nodeHash(siblings[used++], digest);
            } else if (index + 1 < count) {
                if (used == siblings.length) return (bytes32(0), false);
                digest = nodeHash(digest, siblings[used++]);
            }
            index >>= 1;
            count = (count + 1) >> 1;
        }
        return (digest, used == siblings.length);
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
