// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {BN254, G1Point} from "./BN254.sol";
import {DatasetRegistry} from "./DatasetRegistry.sol";
import {IDatasetHealth} from "./LicenseManager.sol";
import {LicenseTerms, Permission, Purpose, TermsLib} from "./Types.sol";

/// @notice The consent question pools ask LicenseManager: has the owner revoked the dataset itself?
interface IDatasetConsent {
    function consentRevokedAt(uint256 datasetId) external view returns (uint64);
}

/// @title DataPools
/// @notice Many contributors, one dataset a lab can license, every sale split pro rata on-chain.
///
/// A curator opens a pool (terms, price, curator fee, rules, and the BN254 key of the pool's key
/// release). A contribution is an ordinary registered dataset of its owner, who adds it with its
/// data key sealed to the pool's key release (so it need not be online for sales). The curator
/// accepts (setting its weight, default its plaintext size) or rejects it; it never accepts its
/// own. The contributor may withdraw at any time: no license bought afterwards includes it.
///
/// Snapshots in O(1): the pool has an `epoch` bumped by every acceptance and every withdrawal of an
/// accepted contribution; a contribution records the epochs it was accepted and withdrawn at; a
/// license records the pool epoch at purchase. A contribution is in a license's snapshot iff
/// acceptedEpoch != 0 && acceptedEpoch <= snapshot && (withdrawnEpoch == 0 || withdrawnEpoch > snapshot).
///
/// Revenue (MasterChef-style): a sale pays the curator fee, and adds the rest, scaled by SCALE, to
/// `accPerWeight` over the pool's current total weight; the division's remainder is carried in
/// `carry` to the next sale. A contribution earns weight * (accPerWeight - its entry value) in
/// scaled units, and claims whole token units; the sub-unit rest stays its credit. So, in scaled
/// units, token balance * SCALE == sum of credits + sum of carries + curator fees owed * SCALE,
/// exactly (the property test checks it). The payment is split at purchase: a pool sale has no
/// escrow (see docs/pools.md).
///
/// Keys: the curator or its key agent delivers each contribution's data key to the buyer's
/// per-license BN254 key as LicenseManager does (R, key XOR mask), one delivery per contribution,
/// each checked here: in the snapshot, consent standing (unless the terms are non-revocable:
/// licenses then survive withdrawal), dataset servable. A wrong key is shown by `dispute`
/// (the buyer reveals its secret); it is counted against the curator.
contract DataPools is ReentrancyGuard {
    using SafeERC20 for IERC20;
    using TermsLib for LicenseTerms;

    enum Status {
        None,
        Pending,
        Accepted,
        Rejected,
        Withdrawn
    }

    struct Pool {
        address curator;
        address keyAgent; // may deliver keys for the curator; address(0) = curator only
        address paymentToken;
        uint16 curatorFeeBps;
        uint32 epoch;
        uint32 members; // accepted and consented now
        uint64 createdAt;
        uint256 price;
        uint256 totalWeight; // of the members
        uint256 accPerWeight; // scaled revenue per unit of weight since creation
        uint256 carry; // scaled remainder of the last sale's division, < totalWeight at that sale
        uint256 curatorOwed; // token units
        uint256 revenue; // token units paid in, all time
        uint256 agentKeyX;
        uint256 agentKeyY;
        bytes32 rulesHash;
    }

    struct Contribution {
        uint256 poolId;
        uint256 datasetId;
        address contributor;
        Status status;
        uint32 acceptedEpoch;
        uint32 withdrawnEpoch;
        uint64 contributedAt;
        uint256 weight;
        uint256 accAtEntry; // pool.accPerWeight when last settled
        uint256 credit; // scaled units earned and not yet claimed, as of the last settlement
        uint256 claimed; // token units, all time
        bytes32 sealedKeyHash; // keccak256(abi.encode(R.x, R.y, sealedKey)) of the seal to the pool's key
    }

    struct PoolLicense {
        uint256 poolId;
        address buyer;
        Purpose purpose;
        bool revocable;
        uint32 snapshotEpoch;
        uint32 members; // contributions in the snapshot
        uint64 purchasedAt;
        uint64 expiresAt; // 0 = perpetual
        uint256 price;
        uint256 totalWeight; // of the snapshot
        bytes32 buyerKeyHash;
    }

    uint256 public constant SCALE = 1e36;
    uint16 public constant MAX_FEE_BPS = 10_000;
    /// @dev Domain tags of the two seals: contributor -> pool key release, key release -> buyer.
    bytes32 public constant CONTRIBUTION_SEAL_TAG = keccak256("datasov/pool-contribution-seal/v1");
    bytes32 public constant POOL_DELIVERY_TAG = keccak256("datasov/pool-key-delivery/v1");
    bytes public constant KEY_COMMITMENT_TAG = "datasov/key-commitment/v1\x00";

    DatasetRegistry public immutable registry;
    IDatasetConsent public immutable consent;
    IDatasetHealth public immutable storageMarket;

    uint256 public poolCount;
    uint256 public contributionCount;
    uint256 public licenseCount;
    mapping(uint256 poolId => Pool) private _pools;
    mapping(uint256 poolId => LicenseTerms) private _terms;
    mapping(uint256 contributionId => Contribution) private _contributions;
    mapping(uint256 licenseId => PoolLicense) private _licenses;
    /// @notice keccak256(abi.encode(R.x, R.y, sealedKey)) per delivered (license, contribution).
    mapping(uint256 licenseId => mapping(uint256 contributionId => bytes32)) public deliveryHash;
    mapping(uint256 poolId => mapping(uint256 datasetId => uint256 contributionId)) public contributionOf;
    /// @notice Deliveries a buyer proved wrong, per curator.
    mapping(address curator => uint256) public rejectedDeliveries;

    event PoolCreated(
        uint256 indexed poolId,
        address indexed curator,
        address paymentToken,
        uint256 price,
        uint16 curatorFeeBps,
        address keyAgent,
        uint256 agentKeyX,
        uint256 agentKeyY,
        string rules
    );
    event Contributed(
        uint256 indexed poolId,
        uint256 indexed contributionId,
        uint256 indexed datasetId,
        address contributor,
        uint256 sealX,
        uint256 sealY,
        bytes32 sealedKey
    );
    event ContributionAccepted(uint256 indexed poolId, uint256 indexed contributionId, uint256 weight, uint32 epoch);
    event ContributionRejected(uint256 indexed poolId, uint256 indexed contributionId);
    event ContributionWithdrawn(uint256 indexed poolId, uint256 indexed contributionId, uint32 epoch);
    event PoolLicensePurchased(
        uint256 indexed licenseId,
        uint256 indexed poolId,
        address indexed buyer,
        Purpose purpose,
        uint256 buyerKeyX,
        uint256 buyerKeyY,
        uint256 price,
        uint256 curatorFee,
        uint32 snapshotEpoch
    );
    event PoolKeyDelivered(
        uint256 indexed licenseId, uint256 indexed contributionId, uint256 rX, uint256 rY, bytes32 sealedKey
    );
    event PoolDeliveryRejected(uint256 indexed licenseId, uint256 indexed contributionId, address indexed curator);
    event ContributionClaimed(uint256 indexed contributionId, address indexed contributor, uint256 amount);
    event CuratorClaimed(uint256 indexed poolId, address indexed curator, uint256 amount);

    error UnknownPool(uint256 poolId);
    error UnknownContribution(uint256 contributionId);
    error UnknownPoolLicense(uint256 licenseId);
    error NotCurator(uint256 poolId, address caller);
    error NotContributor(uint256 contributionId, address caller);
    error NotPoolKeyReleaser(uint256 poolId, address caller);
    error SelfAcceptance(uint256 contributionId);
    error AlreadyContributed(uint256 poolId, uint256 datasetId, uint256 contributionId);
    error WrongContributionStatus(uint256 contributionId, Status status);
    error ContributionNotInLicense(uint256 licenseId, uint256 contributionId);
    error ContributionWithdrawnFromLicense(uint256 licenseId, uint256 contributionId);
    error AlreadyDelivered(uint256 licenseId, uint256 contributionId);
    error PoolLicenseExpired(uint256 licenseId);
    error EmptyPool(uint256 poolId);
    error InvalidPool(string reason);
    error InvalidWeight(uint256 weight);
    error NotPoolBuyer(uint256 licenseId, address caller);

    constructor(DatasetRegistry registry_, IDatasetConsent consent_, IDatasetHealth storageMarket_) {
        registry = registry_;
        consent = consent_;
        storageMarket = storageMarket_;
    }

    // ------------------------------------------------------------------ pools ----

    /// @notice Open a pool. `agentKey` is the BN254 key contributors seal their data keys to
    /// (held by the curator's key agent `keyAgent`, or the curator if that is address(0)).
    function createPool(
        LicenseTerms calldata terms,
        uint256 price,
        uint16 curatorFeeBps,
        string calldata rules,
        address paymentToken,
        address keyAgent,
        G1Point calldata agentKey
    ) external returns (uint256 poolId) {
        if (curatorFeeBps > MAX_FEE_BPS) revert InvalidPool("curator fee above 100%");
        if (price > type(uint128).max) revert InvalidPool("price above 2^128");
        if (paymentToken == address(0)) revert InvalidPool("zero payment token");
        if (terms.licenseDuration > registry.MAX_LICENSE_DURATION()) revert InvalidPool("license too long");
        if (!BN254.isOnCurve(agentKey)) revert InvalidPool("agent key not on BN254");
        poolId = ++poolCount;
        Pool storage p = _pools[poolId];
        p.curator = msg.sender;
        p.keyAgent = keyAgent;
        p.paymentToken = paymentToken;
        p.curatorFeeBps = curatorFeeBps;
        p.createdAt = uint64(block.timestamp);
        p.price = price;
        p.agentKeyX = agentKey.x;
        p.agentKeyY = agentKey.y;
        p.rulesHash = keccak256(bytes(rules));
        _terms[poolId] = terms;
        emit PoolCreated(
            poolId, msg.sender, paymentToken, price, curatorFeeBps, keyAgent, agentKey.x, agentKey.y, rules
        );
    }

    /// @notice Add the caller's dataset to a pool, its data key sealed to the pool's key release:
    /// `seal` = s*G and `sealedKey` = key XOR contributionMask(poolId, datasetId, s*agentKey).
    function contribute(uint256 poolId, uint256 datasetId, G1Point calldata seal, bytes32 sealedKey)
        external
        returns (uint256 contributionId)
    {
        _pool(poolId);
        if (registry.ownerOf(datasetId) != msg.sender) revert DatasetRegistry.NotDatasetOwner(datasetId, msg.sender);
        uint256 existing = contributionOf[poolId][datasetId];
        if (existing != 0) revert AlreadyContributed(poolId, datasetId, existing);
        if (!BN254.isOnCurve(seal)) revert InvalidPool("seal not on BN254");
        contributionId = ++contributionCount;
        contributionOf[poolId][datasetId] = contributionId;
        Contribution storage c = _contributions[contributionId];
        c.poolId = poolId;
        c.datasetId = datasetId;
        c.contributor = msg.sender;
        c.status = Status.Pending;
        c.contributedAt = uint64(block.timestamp);
        c.sealedKeyHash = keccak256(abi.encode(seal.x, seal.y, sealedKey));
        emit Contributed(poolId, contributionId, datasetId, msg.sender, seal.x, seal.y, sealedKey);
    }

    /// @notice The curator accepts a pending contribution with `weight` (0: the dataset's plaintext size).
    function accept(uint256 contributionId, uint256 weight) external {
        Contribution storage c = _contribution(contributionId);
        Pool storage p = _pools[c.poolId];
        if (msg.sender != p.curator) revert NotCurator(c.poolId, msg.sender);
        if (c.contributor == p.curator) revert SelfAcceptance(contributionId);
        if (c.status != Status.Pending) revert WrongContributionStatus(contributionId, c.status);
        if (weight == 0) weight = registry.getDataset(c.datasetId).plaintextSize;
        if (weight == 0 || weight > type(uint96).max) revert InvalidWeight(weight);
        c.status = Status.Accepted;
        c.weight = weight;
        c.accAtEntry = p.accPerWeight;
        c.acceptedEpoch = ++p.epoch;
        p.totalWeight += weight;
        p.members += 1;
        emit ContributionAccepted(c.poolId, contributionId, weight, c.acceptedEpoch);
    }

    /// @notice The curator rejects a pending contribution: it never earns and is never released.
    function reject(uint256 contributionId) external {
        Contribution storage c = _contribution(contributionId);
        if (msg.sender != _pools[c.poolId].curator) revert NotCurator(c.poolId, msg.sender);
        if (c.status != Status.Pending) revert WrongContributionStatus(contributionId, c.status);
        c.status = Status.Rejected;
        emit ContributionRejected(c.poolId, contributionId);
    }

    /// @notice The contributor withdraws its consent: no license bought from now on includes it.
    /// What it earned so far stays claimable.
    function withdrawContribution(uint256 contributionId) external {
        Contribution storage c = _contribution(contributionId);
        if (msg.sender != c.contributor) revert NotContributor(contributionId, msg.sender);
        Status status = c.status;
        if (status != Status.Pending && status != Status.Accepted) revert WrongContributionStatus(contributionId, status);
        Pool storage p = _pools[c.poolId];
        _settle(c, p); // credits what it earned while accepted
        c.status = Status.Withdrawn;
        if (status == Status.Accepted) {
            c.withdrawnEpoch = ++p.epoch;
            p.totalWeight -= c.weight;
            p.members -= 1;
        }
        emit ContributionWithdrawn(c.poolId, contributionId, c.withdrawnEpoch);
    }

    // --------------------------------------------------------------- licensing ----

    /// @notice License the pool as it stands at this block for `purpose`, paying its price (at
    /// most `maxPrice`, in `paymentToken`) split at once: the curator fee, the rest over the
    /// members by weight. `buyerKey` is a fresh BN254 key, as for LicenseManager.purchase.
    /// Gas does not depend on the number of contributions.
    function purchase(
        uint256 poolId,
        Purpose purpose,
        G1Point calldata buyerKey,
        uint256 maxPrice,
        address paymentToken
    ) external nonReentrant returns (uint256 licenseId) {
        Pool storage p = _pool(poolId);
        if (p.paymentToken != paymentToken) revert PoolPaymentTokenMismatch(poolId, paymentToken, p.paymentToken);
        if (p.price > maxPrice) revert PriceAboveLimit(p.price, maxPrice);
        if (TermsLib.permissionFor(_terms[poolId], purpose) == Permission.NotAllowed) {
            revert PoolPurposeNotAllowed(poolId, purpose);
        }
        if (!BN254.isOnCurve(buyerKey)) revert InvalidBuyerKey();
        if (p.totalWeight == 0) revert EmptyPool(poolId);

        uint256 fee = _split(p);
        licenseId = _record(poolId, p, purpose, buyerKey);
        emit PoolLicensePurchased(licenseId, poolId, msg.sender, purpose, buyerKey.x, buyerKey.y, p.price, fee, p.epoch);

        uint256 price = p.price;
        if (price > 0) {
            IERC20 token = IERC20(paymentToken);
            uint256 before = token.balanceOf(address(this));
            token.safeTransferFrom(msg.sender, address(this), price);
            if (token.balanceOf(address(this)) - before != price) revert UnsupportedToken(paymentToken);
        }
    }

    /// @dev Credit a sale: the curator fee, and the rest over the members' weight (remainder carried).
    function _split(Pool storage p) private returns (uint256 fee) {
        uint256 price = p.price;
        uint256 total = p.totalWeight;
        fee = (price * p.curatorFeeBps) / MAX_FEE_BPS;
        uint256 scaled = (price - fee) * SCALE + p.carry;
        p.accPerWeight += scaled / total;
        p.carry = scaled % total;
        p.curatorOwed += fee;
        p.revenue += price;
    }

    /// @dev Store a license of the pool as it stands: its epoch is the snapshot.
    function _record(uint256 poolId, Pool storage p, Purpose purpose, G1Point calldata buyerKey)
        private
        returns (uint256 licenseId)
    {
        LicenseTerms storage terms = _terms[poolId];
        licenseId = ++licenseCount;
        PoolLicense storage l = _licenses[licenseId];
        l.poolId = poolId;
        l.buyer = msg.sender;
        l.purpose = purpose;
        l.revocable = terms.revocable;
        l.snapshotEpoch = p.epoch;
        l.members = p.members;
        l.purchasedAt = uint64(block.timestamp);
        l.expiresAt = terms.licenseDuration == 0 ? 0 : uint64(block.timestamp) + terms.licenseDuration;
        l.price = p.price;
        l.totalWeight = p.totalWeight;
        l.buyerKeyHash = keccak256(abi.encode(buyerKey.x, buyerKey.y));
    }

    /// @notice Deliver one contribution's data key to a pool license: `r` = r*G, `sealedKey` =
    /// key XOR deliveryMask(licenseId, contributionId, r*B). Only the curator or its key agent,
    /// once per (license, contribution), for a contribution in the license's snapshot whose
    /// consent still stands (or any in the snapshot if the terms are not revocable), while the
    /// license runs and the contribution's dataset is servable.
    function deliverKey(uint256 licenseId, uint256 contributionId, G1Point calldata r, bytes32 sealedKey)
        external
        nonReentrant
    {
        PoolLicense storage l = _license(licenseId);
        Pool storage p = _pools[l.poolId];
        if (msg.sender != p.curator && (msg.sender != p.keyAgent || msg.sender == address(0))) {
            revert NotPoolKeyReleaser(l.poolId, msg.sender);
        }
        Contribution storage c = _contribution(contributionId);
        if (c.poolId != l.poolId || !_inSnapshot(c, l.snapshotEpoch)) {
            revert ContributionNotInLicense(licenseId, contributionId);
        }
        if (l.revocable && !_consented(c)) revert ContributionWithdrawnFromLicense(licenseId, contributionId);
        if (l.expiresAt != 0 && block.timestamp >= l.expiresAt) revert PoolLicenseExpired(licenseId);
        if (deliveryHash[licenseId][contributionId] != bytes32(0)) revert AlreadyDelivered(licenseId, contributionId);
        if (!BN254.isOnCurve(r)) revert InvalidDeliveryPoint();
        if (!storageMarket.isServable(c.datasetId)) revert DatasetNotServable(c.datasetId);
        deliveryHash[licenseId][contributionId] = keccak256(abi.encode(r.x, r.y, sealedKey));
        emit PoolKeyDelivered(licenseId, contributionId, r.x, r.y, sealedKey);
    }

    /// @notice The buyer shows a delivered key is wrong by revealing its per-license secret; the
    /// rejection is counted against the curator (the payment was split at purchase). Reverts
    /// DeliveryIsValid if the key matches the dataset's key commitment.
    function dispute(
        uint256 licenseId,
        uint256 contributionId,
        uint256 buyerSecret,
        G1Point calldata r,
        bytes32 sealedKey
    ) external {
        PoolLicense storage l = _license(licenseId);
        if (msg.sender != l.buyer) revert NotPoolBuyer(licenseId, msg.sender);
        bytes32 delivered = deliveryHash[licenseId][contributionId];
        if (delivered == bytes32(0) || delivered == bytes32(uint256(1))) revert NotDisputable(licenseId);
        if (keccak256(abi.encode(r.x, r.y, sealedKey)) != delivered) revert DeliveryMismatch(licenseId);
        (bool ok, uint256 bx, uint256 by) = BN254.mulGenerator(buyerSecret);
        if (!ok || keccak256(abi.encode(bx, by)) != l.buyerKeyHash) revert InvalidReveal(licenseId);
        if (_opensRight(licenseId, contributionId, buyerSecret, r, sealedKey)) revert DeliveryIsValid(licenseId);
        deliveryHash[licenseId][contributionId] = bytes32(uint256(1)); // rejected: never disputed twice
        address curator = _pools[l.poolId].curator;
        rejectedDeliveries[curator] += 1;
        emit PoolDeliveryRejected(licenseId, contributionId, curator);
    }

    // ------------------------------------------------------------------ claims ----

    /// @notice Pay a contribution what it earned, in whole token units, to its contributor
    /// (anyone may call; the money only goes to the contributor). The sub-unit rest stays credited.
    function claim(uint256 contributionId) external nonReentrant returns (uint256 amount) {
        Contribution storage c = _contribution(contributionId);
        Pool storage p = _pools[c.poolId];
        _settle(c, p);
        amount = c.credit / SCALE;
        c.credit -= amount * SCALE;
        c.claimed += amount;
        emit ContributionClaimed(contributionId, c.contributor, amount);
        if (amount > 0) IERC20(p.paymentToken).safeTransfer(c.contributor, amount);
    }

    /// @notice Pay the curator its fees (anyone may call; the money only goes to the curator).
    function claimCurator(uint256 poolId) external nonReentrant returns (uint256 amount) {
        Pool storage p = _pool(poolId);
        amount = p.curatorOwed;
        p.curatorOwed = 0;
        emit CuratorClaimed(poolId, p.curator, amount);
        if (amount > 0) IERC20(p.paymentToken).safeTransfer(p.curator, amount);
    }

    // ------------------------------------------------------------------- views ----

    /// @notice The pad of a delivery to a pool license, bound to the chain, this contract, the
    /// license and the contribution.
    function deliveryMask(uint256 licenseId, uint256 contributionId, uint256 sx, uint256 sy)
        public
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(POOL_DELIVERY_TAG, block.chainid, address(this), licenseId, contributionId, sx, sy));
    }

    /// @notice The pad of a contributor's seal of its data key to the pool's key release.
    function contributionMask(uint256 poolId, uint256 datasetId, uint256 sx, uint256 sy) public view returns (bytes32) {
        return keccak256(abi.encode(CONTRIBUTION_SEAL_TAG, block.chainid, address(this), poolId, datasetId, sx, sy));
    }

    /// @notice Scaled units a contribution has earned and not claimed (divide by SCALE for tokens).
    function earnedScaled(uint256 contributionId) public view returns (uint256) {
        Contribution storage c = _contribution(contributionId);
        if (c.status != Status.Accepted) return c.credit;
        return c.credit + c.weight * (_pools[c.poolId].accPerWeight - c.accAtEntry);
    }

    /// @notice Whole token units `claim` would pay now.
    function earned(uint256 contributionId) external view returns (uint256) {
        return earnedScaled(contributionId) / SCALE;
    }

    /// @notice Is the contribution part of what the license covers now: in its snapshot and
    /// (for revocable terms) still consented?
    function covers(uint256 licenseId, uint256 contributionId) external view returns (bool) {
        PoolLicense storage l = _license(licenseId);
        Contribution storage c = _contributions[contributionId];
        if (c.poolId != l.poolId || !_inSnapshot(c, l.snapshotEpoch)) return false;
        return !l.revocable || _consented(c);
    }

    function inSnapshot(uint256 licenseId, uint256 contributionId) external view returns (bool) {
        PoolLicense storage l = _license(licenseId);
        Contribution storage c = _contributions[contributionId];
        return c.poolId == l.poolId && _inSnapshot(c, l.snapshotEpoch);
    }

    function isLicenseValid(uint256 licenseId) external view returns (bool) {
        PoolLicense storage l = _licenses[licenseId];
        return l.buyer != address(0) && (l.expiresAt == 0 || block.timestamp < l.expiresAt);
    }

    function getPool(uint256 poolId) external view returns (Pool memory) {
        return _pool(poolId);
    }

    function getPoolTerms(uint256 poolId) external view returns (LicenseTerms memory) {
        _pool(poolId);
        return _terms[poolId];
    }

    function getContribution(uint256 contributionId) external view returns (Contribution memory) {
        return _contribution(contributionId);
    }

    function getPoolLicense(uint256 licenseId) external view returns (PoolLicense memory) {
        return _license(licenseId);
    }

    // ---------------------------------------------------------------- internal ----

    function _settle(Contribution storage c, Pool storage p) private {
        if (c.status == Status.Accepted) {
            c.credit += c.weight * (p.accPerWeight - c.accAtEntry);
            c.accAtEntry = p.accPerWeight;
        }
    }

    /// @dev Does the delivery open, with the buyer's secret, to the key the dataset committed to?
    function _opensRight(
        uint256 licenseId,
        uint256 contributionId,
        uint256 buyerSecret,
        G1Point calldata r,
        bytes32 sealedKey
    ) private view returns (bool) {
        (bool valid, uint256 sx, uint256 sy) = BN254.mul(r.x, r.y, buyerSecret); // false: R is no curve point
        if (!valid) return false;
        bytes32 key = sealedKey ^ deliveryMask(licenseId, contributionId, sx, sy);
        (bytes32 commitment, bytes32 salt) = registry.keyCommitmentOf(_contributions[contributionId].datasetId);
        return sha256(abi.encodePacked(KEY_COMMITMENT_TAG, salt, key)) == commitment;
    }

    function _inSnapshot(Contribution storage c, uint32 snapshot) private view returns (bool) {
        uint32 accepted = c.acceptedEpoch;
        uint32 withdrawn = c.withdrawnEpoch;
        return accepted != 0 && accepted <= snapshot && (withdrawn == 0 || withdrawn > snapshot);
    }

    function _consented(Contribution storage c) private view returns (bool) {
        return c.status == Status.Accepted && consent.consentRevokedAt(c.datasetId) == 0;
    }

    function _pool(uint256 poolId) private view returns (Pool storage p) {
        p = _pools[poolId];
        if (p.curator == address(0)) revert UnknownPool(poolId);
    }

    function _contribution(uint256 contributionId) private view returns (Contribution storage c) {
        c = _contributions[contributionId];
        if (c.status == Status.None) revert UnknownContribution(contributionId);
    }

    function _license(uint256 licenseId) private view returns (PoolLicense storage l) {
        l = _licenses[licenseId];
        if (l.buyer == address(0)) revert UnknownPoolLicense(licenseId);
    }

    error PoolPaymentTokenMismatch(uint256 poolId, address expected, address current);
    error PriceAboveLimit(uint256 price, uint256 maxPrice);
    error PoolPurposeNotAllowed(uint256 poolId, Purpose purpose);
    error InvalidBuyerKey();
    error InvalidDeliveryPoint();
    error DatasetNotServable(uint256 datasetId);
    error UnsupportedToken(address token);
    error NotDisputable(uint256 licenseId);
    error DeliveryMismatch(uint256 licenseId);
    error InvalidReveal(uint256 licenseId);
    error DeliveryIsValid(uint256 licenseId);
}
