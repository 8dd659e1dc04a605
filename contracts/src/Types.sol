// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice What a license lets its holder do with a dataset, in the vocabulary of the C2PA/CAWG
/// training-and-data-mining assertion: each AI use is NotAllowed, Allowed, or Constrained (allowed
/// under the conditions of the full terms text, `termsURI` / `termsHash`).
enum Permission {
    NotAllowed,
    Allowed,
    Constrained
}

/// @notice The purpose a license is bought for; each maps to one permission of the terms.
enum Purpose {
    AiTraining,
    AiGenerativeTraining,
    AiInference,
    DataMining
}

struct LicenseTerms {
    Permission aiTraining;
    Permission aiGenerativeTraining;
    Permission aiInference;
    Permission dataMining;
    bool commercialUse;
    bool derivativesAllowed;
    bool attributionRequired;
    /// @dev true: revoking consent ends licenses already granted; false: they run their course.
    bool revocable;
    /// @dev seconds from key delivery; 0 = perpetual.
    uint64 licenseDuration;
    string termsURI;
    bytes32 termsHash;
}

library TermsLib {
    function permissionFor(LicenseTerms memory t, Purpose p) internal pure returns (Permission) {
        if (p == Purpose.AiTraining) return t.aiTraining;
        if (p == Purpose.AiGenerativeTraining) return t.aiGenerativeTraining;
        if (p == Purpose.AiInference) return t.aiInference;
        return t.dataMining;
    }
}
