// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {DatasetRegistry} from "./DatasetRegistry.sol";
import {StorageMarket} from "./StorageMarket.sol";

/// @title KeyGuardians
/// @notice Who holds the pieces of a dataset's key. A staked storage operator announces a guardian
/// X25519 key here; a dataset's owner splits its data key (Shamir t-of-m over GF(2^256 - 189)) among
/// m distinct announced guardians, seals each piece to its guardian's key (the sealed pieces travel
/// in the GuardiansSet event) and registers one commitment per piece. `LicenseManager` accepts a
/// piece for a license only from its guardian and checks a disputed piece against its commitment.
/// Setting guardians again starts a new epoch (a new polynomial): pieces of older epochs are
/// retired, they neither count for nor combine with the new ones.
contract KeyGuardians {
    uint256 public constant MAX_GUARDIANS = 32;
    /// @notice Guardians together take at most half of a sale: feeBps * threshold <= this.
    uint256 public constant MAX_TOTAL_FEE_BPS = 5000;
    uint256 public constant FIELD_PRIME = 2 ** 256 - 189;
    bytes32 public constant PIECE_COMMITMENT_TAG = keccak256("datasov/key-piece-commitment/v1");

    struct GuardianSet {
        address[] guardians; // guardians[i] holds piece i + 1
        bytes32[] commitments; // commitments[i] to piece i + 1
        uint8 threshold;
        uint16 feeBps; // per delivered piece, of the license price
    }

    DatasetRegistry public immutable registry;
    StorageMarket public immutable storageMarket;

    mapping(address operator => bytes32) public guardianKeyOf;
    mapping(uint256 datasetId => uint32) public epochOf; // 0: no guardians yet
    mapping(uint256 datasetId => mapping(uint32 epoch => GuardianSet)) private _sets;

    event GuardianKeyRegistered(address indexed operator, bytes32 key);
    event GuardiansSet(
        uint256 indexed datasetId,
        uint32 indexed epoch,
        address[] guardians,
        uint8 threshold,
        uint16 feeBps,
        bytes32[] commitments,
        bytes[] sealedPieces
    );

    error NotStakedOperator(address operator);
    error InvalidGuardianKey();
    error NotDatasetOwner(uint256 datasetId, address caller);
    error InvalidThreshold(uint256 threshold, uint256 guardians);
    error LengthMismatch();
    error DuplicateGuardian(address guardian);
    error NoGuardianKey(address guardian);
    error FeeTooHigh(uint256 feeBps, uint256 threshold);

    constructor(DatasetRegistry registry_, StorageMarket storageMarket_) {
        registry = registry_;
        storageMarket = storageMarket_;
    }

    /// @notice Announce (or change) your guardian X25519 public key. Staked operators only.
    function registerGuardianKey(bytes32 key) external {
        if (key == bytes32(0)) revert InvalidGuardianKey();
        if (!isStaked(msg.sender)) revert NotStakedOperator(msg.sender);
        guardianKeyOf[msg.sender] = key;
        emit GuardianKeyRegistered(msg.sender, key);
    }

    /// @notice A registered operator holding at least the market's minimum stake and not leaving:
    /// one with an exit epoch is on its way out, and a key piece given to it would leave with it.
    function isStaked(address operator) public view returns (bool) {
        StorageMarket.Operator memory op = storageMarket.getOperator(operator);
        return op.registered && op.exitEpoch == 0 && op.stake >= storageMarket.minStake();
    }

    /// @notice The owner names the dataset's guardians (distinct staked operators with a guardian
    /// key), the threshold, one commitment per piece and each guardian's sealed piece, and the fee
    /// each delivered piece earns. Starts a new epoch; returns it.
    function setGuardians(
        uint256 datasetId,
        address[] calldata guardians,
        uint8 threshold,
        bytes32[] calldata commitments,
        bytes[] calldata sealedPieces,
        uint16 feeBps
    ) external returns (uint32 epoch) {
        if (registry.ownerOf(datasetId) != msg.sender) revert NotDatasetOwner(datasetId, msg.sender);
        uint256 m = guardians.length;
        if (threshold == 0 || threshold > m || m > MAX_GUARDIANS) revert InvalidThreshold(threshold, m);
        if (commitments.length != m || sealedPieces.length != m) revert LengthMismatch();
        if (uint256(feeBps) * threshold > MAX_TOTAL_FEE_BPS) revert FeeTooHigh(feeBps, threshold);
        for (uint256 i = 0; i < m; i++) {
            address g = guardians[i];
            for (uint256 j = 0; j < i; j++) {
                if (guardians[j] == g) revert DuplicateGuardian(g);
            }
            if (guardianKeyOf[g] == bytes32(0)) revert NoGuardianKey(g);
            if (!isStaked(g)) revert NotStakedOperator(g);
        }
        epoch = ++epochOf[datasetId];
        GuardianSet storage s = _sets[datasetId][epoch];
        s.guardians = guardians;
        s.commitments = commitments;
        s.threshold = threshold;
        s.feeBps = feeBps;
        emit GuardiansSet(datasetId, epoch, guardians, threshold, feeBps, commitments, sealedPieces);
    }

    function getSet(uint256 datasetId, uint32 epoch) external view returns (GuardianSet memory) {
        return _sets[datasetId][epoch];
    }

    /// @notice The guardian holding piece `index` (1-based) of an epoch; address(0) if none.
    function guardianAt(uint256 datasetId, uint32 epoch, uint256 index) external view returns (address) {
        GuardianSet storage s = _sets[datasetId][epoch];
        return index == 0 || index > s.guardians.length ? address(0) : s.guardians[index - 1];
    }

    function thresholdOf(uint256 datasetId, uint32 epoch) external view returns (uint8) {
        return _sets[datasetId][epoch].threshold;
    }

    function feeOf(uint256 datasetId, uint32 epoch) external view returns (uint16) {
        return _sets[datasetId][epoch].feeBps;
    }

    /// @notice Does `value` open the commitment to piece `index` of the epoch? (A field element
    /// whose sha256(abi.encode(tag, datasetId, epoch, index, value)) is the registered commitment.)
    function checkPiece(uint256 datasetId, uint32 epoch, uint256 index, bytes32 value) external view returns (bool) {
        GuardianSet storage s = _sets[datasetId][epoch];
        if (index == 0 || index > s.commitments.length || uint256(value) >= FIELD_PRIME) return false;
        return sha256(abi.encode(PIECE_COMMITMENT_TAG, datasetId, epoch, index, value)) == s.commitments[index - 1];
    }
}
