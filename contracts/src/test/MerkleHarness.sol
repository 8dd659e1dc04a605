// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {MerkleVerifier} from "../MerkleVerifier.sol";

/// @notice Exposes MerkleVerifier so tests can check it against the committed Python vectors.
contract MerkleHarness {
    function verify(bytes32 root, bytes calldata leaf, uint256 index, uint256 count, bytes32[] calldata siblings)
        external
        view
        returns (bool)
    {
        return MerkleVerifier.verify(root, leaf, index, count, siblings);
    }

    function leafHash(bytes calldata leaf) external view returns (bytes32) {
        return MerkleVerifier.leafHash(leaf);
    }
}
