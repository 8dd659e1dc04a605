// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {LicenseTerms} from "./Types.sol";

/// @title DatasetRegistry
/// @notice Data owners register datasets: what was committed (manifest hash, Merkle commitment
/// root, sizes, a commitment to the data key and its salt) and the offer (price, payment token, typed license
/// terms). Owners may change the offer for future licenses and delegate key release to an agent.
/// The storage market, named once by the deployer (`setMarket`), may register on an owner's behalf
/// inside that owner's own transaction (`registerFor`: a streaming publish registers and commits
/// its deal at once).
contract DatasetRegistry {
    struct Dataset {
        address owner;
        address keyAgent; // may deliver keys on the owner's behalf; address(0) = owner only
        address paymentToken; // ERC-20 the price is paid in
        uint64 registeredAt;
        uint64 plaintextSize;
        uint64 shareSize; // bytes in each of the n shares
        uint32 leafSize; // Merkle leaf size of the shares
        uint16 k;
        uint16 n;
        uint32 termsVersion; // bumped on every offer update
        uint256 price;
        bytes32 manifestHash;
        bytes32 commitmentRoot;
        bytes32 keyCommitment; // SHA256(KEY_COMMITMENT_TAG || keySalt || data key)
        bytes32 keySalt; // public: lets LicenseManager check a disputed key against keyCommitment
    }

    struct Registration {
        bytes32 manifestHash;
        bytes32 commitmentRoot;
        bytes32 keyCommitment;
        bytes32 keySalt;
        uint64 plaintextSize;
        uint64 shareSize;
        uint32 leafSize;
        uint16 k;
        uint16 n;
        uint256 price;
        address paymentToken;
        address keyAgent;
    }

    /// @notice The longest license an offer may grant (100 years): delivery adds it to a uint64 time.
    uint64 public constant MAX_LICENSE_DURATION = 100 * 365 days;

    uint256 public datasetCount;
    mapping(uint256 datasetId => Dataset) private _datasets;
    mapping(uint256 datasetId => LicenseTerms) private _terms;
    /// @notice A dataset by who registered it and its manifest hash. Keyed by the registrant, so
    /// a copy of someone's pending registration (front-running) squats nothing: it only lists a
    /// dataset under the copier's name, whose key it does not have.
    mapping(address registrant => mapping(bytes32 manifestHash => uint256 datasetId)) public datasetByManifest;
    /// @notice The address a transfer was offered to, until it accepts (Ownable2Step pattern).
    mapping(uint256 datasetId => address) public pendingOwnerOf;
    /// @notice Who deployed the registry: the only account that may name the market, once.
    address public immutable deployer;
    /// @notice The StorageMarket allowed to call `registerFor` (address(0) until `setMarket`).
    address public market;

    event DatasetRegistered(
        uint256 indexed datasetId,
        address indexed owner,
        bytes32 manifestHash,
        bytes32 commitmentRoot,
        bytes32 keyCommitment,
        uint256 price,
        address paymentToken
    );
    event OfferUpdated(
        uint256 indexed datasetId, uint256 price, address paymentToken, uint32 termsVersion, bytes32 termsHash
    );
    event KeyAgentSet(uint256 indexed datasetId, address agent);
    event DatasetOwnershipTransferStarted(uint256 indexed datasetId, address indexed owner, address indexed pendingOwner);
    event DatasetOwnerChanged(uint256 indexed datasetId, address indexed previousOwner, address indexed newOwner);

    error UnknownDataset(uint256 datasetId);
    error NotDatasetOwner(uint256 datasetId, address caller);
    error ManifestAlreadyRegistered(bytes32 manifestHash, uint256 datasetId);
    error InvalidRegistration(string reason);
    error LicenseDurationTooLong(uint64 duration, uint64 maxDuration);
    error NotPendingOwner(uint256 datasetId, address caller);
    error ZeroAddress();
    error NotMarket(address caller);
    error MarketAlreadySet(address market);

    modifier onlyDatasetOwner(uint256 datasetId) {
        Dataset storage d = _datasets[datasetId];
        if (d.owner == address(0)) revert UnknownDataset(datasetId);
        if (d.owner != msg.sender) revert NotDatasetOwner(datasetId, msg.sender);
        _;
    }

    constructor() {
        deployer = msg.sender;
    }

    /// @notice Name the StorageMarket that may call `registerFor`: by the deployer, once.
    function setMarket(address market_) external {
        if (msg.sender != deployer) revert NotMarket(msg.sender);
        if (market != address(0)) revert MarketAlreadySet(market);
        if (market_ == address(0)) revert ZeroAddress();
        market = market_;
    }

    /// @notice Register a dataset with its offer. The caller becomes its owner.
    function register(Registration calldata r, LicenseTerms calldata terms) external returns (uint256 datasetId) {
        datasetId = _register(msg.sender, r, terms);
    }

    /// @notice Register a dataset for `owner`, who becomes its owner: only the market calls it, with
    /// `owner` the sender of the transaction it is running (StorageMarket.registerAndCommit).
    function registerFor(address owner, Registration calldata r, LicenseTerms calldata terms)
        external
        returns (uint256 datasetId)
    {
        if (msg.sender != market || market == address(0)) revert NotMarket(msg.sender);
        if (owner == address(0)) revert ZeroAddress();
        datasetId = _register(owner, r, terms);
    }

    function _register(address owner, Registration calldata r, LicenseTerms calldata terms)
        private
        returns (uint256 datasetId)
    {
        if (r.manifestHash == bytes32(0) || r.commitmentRoot == bytes32(0) || r.keyCommitment == bytes32(0)) {
            revert InvalidRegistration("zero hash");
        }
        if (r.k == 0 || r.k >= r.n || r.n > 256) revert InvalidRegistration("need 1 <= k < n <= 256");
        if (r.leafSize == 0 || r.shareSize == 0) revert InvalidRegistration("zero size");
        if (r.paymentToken == address(0)) revert ZeroAddress();
        _checkTerms(terms);
        uint256 existing = datasetByManifest[owner][r.manifestHash];
        if (existing != 0) revert ManifestAlreadyRegistered(r.manifestHash, existing);

        datasetId = ++datasetCount;
        datasetByManifest[owner][r.manifestHash] = datasetId;
        _datasets[datasetId] = Dataset({
            owner: owner,
            keyAgent: r.keyAgent,
            paymentToken: r.paymentToken,
            registeredAt: uint64(block.timestamp),
            plaintextSize: r.plaintextSize,
            shareSize: r.shareSize,
            leafSize: r.leafSize,
            k: r.k,
            n: r.n,
            termsVersion: 1,
            price: r.price,
            manifestHash: r.manifestHash,
            commitmentRoot: r.commitmentRoot,
            keyCommitment: r.keyCommitment,
            keySalt: r.keySalt
        });
        _terms[datasetId] = terms;
        emit DatasetRegistered(
            datasetId, owner, r.manifestHash, r.commitmentRoot, r.keyCommitment, r.price, r.paymentToken
        );
        emit OfferUpdated(datasetId, r.price, r.paymentToken, 1, terms.termsHash);
        if (r.keyAgent != address(0)) emit KeyAgentSet(datasetId, r.keyAgent);
    }

    /// @notice Change price, token and terms for licenses bought from now on.
    function updateOffer(uint256 datasetId, uint256 price, address paymentToken, LicenseTerms calldata terms)
        external
        onlyDatasetOwner(datasetId)
    {
        if (paymentToken == address(0)) revert ZeroAddress();
        _checkTerms(terms);
        Dataset storage d = _datasets[datasetId];
        d.price = price;
        d.paymentToken = paymentToken;
        uint32 version = ++d.termsVersion;
        _terms[datasetId] = terms;
        emit OfferUpdated(datasetId, price, paymentToken, version, terms.termsHash);
    }

    /// @notice Let `agent` deliver keys for this dataset (address(0) revokes the delegation).
    function setKeyAgent(uint256 datasetId, address agent) external onlyDatasetOwner(datasetId) {
        _datasets[datasetId].keyAgent = agent;
        emit KeyAgentSet(datasetId, agent);
    }

    /// @notice Offer the dataset to `newOwner`; nothing changes until it calls
    /// `acceptDatasetOwnership` (a mistyped address cannot take it). A new offer replaces the last.
    function transferDatasetOwnership(uint256 datasetId, address newOwner) external onlyDatasetOwner(datasetId) {
        if (newOwner == address(0)) revert ZeroAddress();
        pendingOwnerOf[datasetId] = newOwner;
        emit DatasetOwnershipTransferStarted(datasetId, msg.sender, newOwner);
    }

    /// @notice Take over a dataset offered to the caller. The old owner's key agent is dropped:
    /// the new owner appoints its own.
    function acceptDatasetOwnership(uint256 datasetId) external {
        if (pendingOwnerOf[datasetId] != msg.sender || msg.sender == address(0)) {
            revert NotPendingOwner(datasetId, msg.sender);
        }
        Dataset storage d = _datasets[datasetId];
        address previous = d.owner;
        delete pendingOwnerOf[datasetId];
        d.owner = msg.sender;
        if (d.keyAgent != address(0)) {
            d.keyAgent = address(0);
            emit KeyAgentSet(datasetId, address(0));
        }
        emit DatasetOwnerChanged(datasetId, previous, msg.sender);
    }

    function _checkTerms(LicenseTerms calldata terms) private pure {
        if (terms.licenseDuration > MAX_LICENSE_DURATION) {
            revert LicenseDurationTooLong(terms.licenseDuration, MAX_LICENSE_DURATION);
        }
    }

    function getDataset(uint256 datasetId) external view returns (Dataset memory d) {
        d = _datasets[datasetId];
        if (d.owner == address(0)) revert UnknownDataset(datasetId);
    }

    function getTerms(uint256 datasetId) external view returns (LicenseTerms memory) {
        if (_datasets[datasetId].owner == address(0)) revert UnknownDataset(datasetId);
        return _terms[datasetId];
    }

    /// @notice The data key commitment and the salt it was made with (what a key is checked against).
    function keyCommitmentOf(uint256 datasetId) external view returns (bytes32 commitment, bytes32 salt) {
        Dataset storage d = _datasets[datasetId];
        if (d.owner == address(0)) revert UnknownDataset(datasetId);
        return (d.keyCommitment, d.keySalt);
    }

    function ownerOf(uint256 datasetId) external view returns (address owner) {
        owner = _datasets[datasetId].owner;
        if (owner == address(0)) revert UnknownDataset(datasetId);
    }

    /// @notice True if `who` may release keys for the dataset: its owner or its key agent.
    function canReleaseKeys(uint256 datasetId, address who) external view returns (bool) {
        Dataset storage d = _datasets[datasetId];
        return who != address(0) && (who == d.owner || who == d.keyAgent);
    }
}
