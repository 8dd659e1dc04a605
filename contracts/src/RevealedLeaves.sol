// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title RevealedLeaves
/// @notice Which leaves of one share have been revealed by a storage proof (a proof puts its leaf
/// in calldata, so a revealed leaf can be answered from chain history by anyone), and the
/// challenge rule that skips them.
/// @dev A bitmap: bit b of word w is leaf 256 w + b. A draw d is moved to the next unrevealed
/// leaf of its word (wrapping inside the word), else to the first unrevealed leaf of the
/// following words (wrapping around the share), at most `EXTRA_WORDS` of them. The draw stays
/// where it is only when all those words are revealed: for a share of at most
/// 256 (EXTRA_WORDS + 1) leaves that means the whole share is revealed; a larger share needs at
/// least 256 EXTRA_WORDS + 1 revealed leaves (and in practice nearly all: a word fills only after
/// 256 draws of it). A provider answering such a draw from chain history has to keep, or fetch, the
/// share's public leaves: once a whole share is public, that is storing it.
/// Gas: one cold SLOAD per word scanned (one unless the drawn word is full) and one SSTORE per
/// proof (20k on a word's first leaf, 2.9k after).
library RevealedLeaves {
    uint256 internal constant EXTRA_WORDS = 3;

    /// @notice The leaf challenged for draw `draw` (< `leafCount`) given what is revealed.
    function pick(mapping(uint256 word => uint256) storage bits, uint256 draw, uint256 leafCount)
        internal
        view
        returns (uint256)
    {
        uint256 words = (leafCount + 255) >> 8;
        uint256 span = words < EXTRA_WORDS + 1 ? words : EXTRA_WORDS + 1;
        uint256 w = draw >> 8;
        uint256 from = draw & 255;
        for (uint256 i; i < span; ++i) {
            uint256 free = ~bits[w];
            if (w == words - 1) {
                uint256 valid = leafCount - (w << 8); // leaves in the last word, 1..256
                if (valid < 256) free &= (uint256(1) << valid) - 1;
            }
            if (free != 0) {
                uint256 above = (free >> from) << from;
                return (w << 8) | _lowestBit(above != 0 ? above : free);
            }
            w = w + 1 == words ? 0 : w + 1;
            from = 0;
        }
        return draw;
    }

    function isRevealed(mapping(uint256 word => uint256) storage bits, uint256 leaf) internal view returns (bool) {
        return (bits[leaf >> 8] >> (leaf & 255)) & 1 == 1;
    }

    function reveal(mapping(uint256 word => uint256) storage bits, uint256 leaf) internal {
        bits[leaf >> 8] |= uint256(1) << (leaf & 255);
    }

    function _lowestBit(uint256 x) private pure returns (uint256) {
        unchecked {
            return Math.log2(x & (~x + 1));
        }
    }
}
