// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title RevealedLeaves
/// @notice Which leaves of one share a storage proof has revealed in the current round (a proof
/// puts its leaf in calldata, so a revealed leaf can be answered from chain history by anyone),
/// and the challenge rule that skips them. See docs/replay.md.
/// @dev At most `WORDS` storage words per share, whatever its size, so every proof but a share's
/// first few rewrites a word already written (2.9k) instead of starting a fresh one (20k).
/// The share's leaves are folded into C = min(leafCount, CLASSES) classes, leaf i in class i mod C;
/// class c is bit c mod 255 of word c / 255 (bit 255 of a written word is a sentinel that keeps it
/// non-zero). A class is marked when a proof reveals one of its leaves, so an unmarked class holds
/// no revealed leaf at all. A draw d moves to the next unmarked class of its word (wrapping inside
/// the word), else to the first unmarked class of the following words (wrapping), keeping d's
/// block: the leaf d - d mod C + c (one block lower if that is past the last leaf).
/// So within a round no leaf is challenged twice and no revealed leaf is challenged at all.
/// A round ends when every class is marked (after exactly C proofs): the draw itself is
/// challenged and the proof starts a new round with only its own class marked.
/// For shares of up to CLASSES leaves, C = leafCount: a round reveals the whole share, leaf by leaf.
/// For larger shares, a challenge in round r + 1 falls on a leaf revealed earlier with probability
/// at most r / floor(leafCount / C): the share's revealed fraction (docs/replay.md).
/// Gas: one cold SLOAD per word scanned (one unless the drawn word is full) and one SSTORE per
/// proof (2.9k; 20k the first time a word is written; a round's last proof rewrites all words).
library RevealedLeaves {
    uint256 internal constant WORDS = 4;
    uint256 internal constant PER_WORD = 255;
    uint256 internal constant CLASSES = WORDS * PER_WORD; // 1,020
    uint256 internal constant SENTINEL = uint256(1) << 255;

    /// @notice The leaf challenged for draw `draw` (< `leafCount`) given what is marked; `fresh`
    /// when every class is marked (the proof then starts a new round).
    function pick(mapping(uint256 word => uint256) storage bits, uint256 draw, uint256 leafCount)
        internal
        view
        returns (uint256 leaf, bool fresh)
    {
        uint256 classes = leafCount < CLASSES ? leafCount : CLASSES;
        uint256 words = (classes + PER_WORD - 1) / PER_WORD;
        uint256 c = draw % classes;
        uint256 base = draw - c;
        uint256 w = c / PER_WORD;
        uint256 from = c % PER_WORD;
        for (uint256 i; i < words; ++i) {
            uint256 valid = w == words - 1 ? classes - w * PER_WORD : PER_WORD; // classes in word w
            uint256 free = ~bits[w] & ((uint256(1) << valid) - 1);
            if (free != 0) {
                uint256 above = (free >> from) << from;
                leaf = base + w * PER_WORD + _lowestBit(above != 0 ? above : free);
                return (leaf < leafCount ? leaf : leaf - classes, false);
            }
            w = w + 1 == words ? 0 : w + 1;
            from = 0;
        }
        return (draw, true);
    }

    /// @notice Is the class of `leaf` marked in the current round (would a challenge skip it)?
    function isRevealed(mapping(uint256 word => uint256) storage bits, uint256 leaf, uint256 leafCount)
        internal
        view
        returns (bool)
    {
        uint256 c = leaf % (leafCount < CLASSES ? leafCount : CLASSES);
        return (bits[c / PER_WORD] >> (c % PER_WORD)) & 1 == 1;
    }

    /// @notice Mark `leaf`'s class; `fresh` (from `pick`) clears the round first.
    function reveal(mapping(uint256 word => uint256) storage bits, uint256 leaf, uint256 leafCount, bool fresh)
        internal
    {
        uint256 classes = leafCount < CLASSES ? leafCount : CLASSES;
        if (fresh) {
            uint256 words = (classes + PER_WORD - 1) / PER_WORD;
            for (uint256 w; w < words; ++w) {
                bits[w] = SENTINEL;
            }
        }
        uint256 c = leaf % classes;
        bits[c / PER_WORD] |= SENTINEL | (uint256(1) << (c % PER_WORD));
    }

    function _lowestBit(uint256 x) private pure returns (uint256) {
        unchecked {
            return Math.log2(x & (~x + 1));
        }
    }
}
