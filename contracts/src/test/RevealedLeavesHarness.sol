// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {RevealedLeaves} from "../RevealedLeaves.sol";

/// @notice Exposes RevealedLeaves over bitmaps a test writes directly (one bitmap per `key`).
contract RevealedLeavesHarness {
    mapping(uint256 key => mapping(uint256 word => uint256)) private _bits;

    function setWords(uint256 key, uint256[] calldata words, uint256[] calldata values) external {
        for (uint256 i; i < words.length; ++i) {
            _bits[key][words[i]] = values[i];
        }
    }

    function pick(uint256 key, uint256 draw, uint256 leafCount) external view returns (uint256 leaf, bool fresh) {
        return RevealedLeaves.pick(_bits[key], draw, leafCount);
    }
}
