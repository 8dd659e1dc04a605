// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {BN254, G1Point} from "./BN254.sol";
import {DatasetRegistry} from "./DatasetRegistry.sol";
import {LicenseTerms, Permission, Purpose, TermsLib} from "./Types.sol";

/// @notice The one question licensing asks the storage market (StorageMarket implements it).
interface IDatasetHealth {
    /// @notice Does the dataset have an active deal holding at least k healthy shares?
    function isServable(uint256 datasetId) external view returns (bool);
}

/// @title LicenseManager
/// @notice Consent-checked licensing with escrow and verifiable key delivery.
///
/// A buyer pays into escrow for a purpose, naming the offer it agreed to (terms version, payment
/// token, price limit), and registers a fresh per-license BN254 public key B = b*G. The owner (or
/// its key agent) checks consent off-chain and delivers R = r*G and c = key XOR H(tag, chain,
/// this contract, licenseId, r*B). The escrow stays here for `disputeWindow` seconds: if the key
/// does not open or does not match the dataset's key commitment, the buyer reveals b, this
/// contract recomputes b*R with the ecMul precompile, decrypts, checks the key against the
/// commitment (SHA256(tag || salt || key), both registered on-chain) and refunds the buyer; the
/// owner forfeits the payment and the rejection is counted against it. With no upheld dispute the
/// owner claims the payment once the window has closed. Only a servable dataset (an active deal
/// holding at least k healthy shares, asked of the StorageMarket) can be bought or have its key
/// delivered. No key before the delivery deadline (or
/// consent revoked meanwhile): the buyer takes the payment back. Revocation stops new licenses;
/// licenses bought under revocable terms end with it (`isLicenseValid` reflects it).
contract LicenseManager is ReentrancyGuard {
    using SafeERC20 for IERC20;
    using TermsLib for LicenseTerms;

    enum Status {
        None,
        Pending,
        Delivered, // key delivered; `paid` once the owner has claimed the escrow
        Refunded, // no key in time, or consent revoked before delivery
        Rejected // the buyer proved the delivered key wrong: refunded, owner not paid
    }

    struct License {
        uint256 datasetId;
        address buyer;
        Purpose purpose;
        Status status;
        bool revocable;
        bool paid;
        uint32 termsVersion;
        uint64 purchasedAt;
        uint64 deliveryDeadline;
        uint64 deliveredAt;
        uint64 duration; // seconds from delivery, 0 = perpetual
        uint64 expiresAt; // set at delivery; 0 = perpetual
        address paymentToken;
        uint256 price;
        bytes32 buyerKeyHash; // keccak256(abi.encode(B.x, B.y)); B itself is in LicensePurchased
        bytes32 termsHash;
        bytes32 deliveryHash; // keccak256(abi.encode(R.x, R.y, sealedKey)); both are in KeyDelivered
    }

    /// @dev Domain tag of the key-delivery mask; the key commitment tag of erasure/envelope.py.
    bytes32 public constant DELIVERY_TAG = keccak256("datasov/key-delivery/v1");
    bytes public constant KEY_COMMITMENT_TAG = "datasov/key-commitment/v1\x00";

    DatasetRegistry public immutable registry;
    IDatasetHealth public immutable storageMarket;
    uint64 public immutable deliveryWindow;
    uint64 public immutable disputeWindow;

    uint256 public licenseCount;
    mapping(uint256 licenseId => License) private _licenses;
    mapping(uint256 datasetId => uint64) public consentRevokedAt;
    /// @notice Deliveries the buyer proved wrong, per dataset owner: what a buyer checks first.
    mapping(address owner => uint256) public rejectedDeliveries;

    event LicensePurchased(
        uint256 indexed licenseId,
        uint256 indexed datasetId,
        address indexed buyer,
        Purpose purpose,
        uint256 buyerKeyX,
        uint256 buyerKeyY,
        address paymentToken,
        uint256 price,
        uint64 deliveryDeadline
    );
    event KeyDelivered(
        uint256 indexed licenseId,
        uint256 indexed datasetId,
        uint256 rX,
        uint256 rY,
        bytes32 sealedKey,
        uint64 expiresAt,
        uint64 disputeDeadline
    );
    event DeliveryRejected(uint256 indexed licenseId, uint256 indexed datasetId, address indexed owner, uint256 amount);
    event PaymentClaimed(uint256 indexed licenseId, address indexed owner, uint256 amount);
    event Refunded(uint256 indexed licenseId, address indexed buyer, uint256 amount);
    event ConsentRevoked(uint256 indexed datasetId, uint64 revokedAt);

    error UnknownLicense(uint256 licenseId);
    error ConsentIsRevoked(uint256 datasetId);
    error PurposeNotAllowed(uint256 datasetId, Purpose purpose);
    error PriceAboveLimit(uint256 price, uint256 maxPrice);
    error TermsVersionMismatch(uint256 datasetId, uint32 expected, uint32 current);
    error PaymentTokenMismatch(uint256 datasetId, address expected, address current);
    error InvalidBuyerKey();
    error NotKeyReleaser(uint256 datasetId, address caller);
    error NotPending(uint256 licenseId, Status status);
    error DeliveryDeadlinePassed(uint256 licenseId, uint64 deadline);
    error RefundNotYetAllowed(uint256 licenseId, uint64 deadline);
    error InvalidDeliveryPoint();
    error NotBuyer(uint256 licenseId, address caller);
    error NotDisputable(uint256 licenseId, Status status, bool paid);
    error DisputeWindowClosed(uint256 licenseId, uint64 disputeDeadline);
    error DisputeWindowOpen(uint256 licenseId, uint64 disputeDeadline);
    error DeliveryMismatch(uint256 licenseId);
    error InvalidReveal(uint256 licenseId);
    error DeliveryIsValid(uint256 licenseId);
    error NotDatasetOwner(uint256 datasetId, address caller);
    error AlreadyRevoked(uint256 datasetId);
    error UnsupportedToken(address token);
    error DatasetNotServable(uint256 datasetId);

    constructor(
        DatasetRegistry registry_,
        IDatasetHealth storageMarket_,
        uint64 deliveryWindow_,
        uint64 disputeWindow_
    ) {
        registry = registry_;
        storageMarket = storageMarket_;
        deliveryWindow = deliveryWindow_;
        disputeWindow = disputeWindow_;
    }

    /// @notice Buy a license for `purpose` under the offer the buyer saw: `termsVersion` and
    /// `paymentToken` must be the dataset's current ones and its price at most `maxPrice` (an
    /// offer changed while the transaction was pending reverts it). The price goes into escrow;
    /// the buyer must have approved this contract for it. `buyerKey` is a fresh BN254 G1 point
    /// whose secret scalar the buyer keeps (it reveals it only to dispute a bad delivery).
    function purchase(
        uint256 datasetId,
        Purpose purpose,
        G1Point calldata buyerKey,
        uint256 maxPrice,
        uint32 termsVersion,
        address paymentToken
    ) external nonReentrant returns (uint256 licenseId) {
        DatasetRegistry.Dataset memory d = registry.getDataset(datasetId); // reverts if unknown
        LicenseTerms memory terms = registry.getTerms(datasetId);
        if (consentRevokedAt[datasetId] != 0) revert ConsentIsRevoked(datasetId);
        if (d.termsVersion != termsVersion) revert TermsVersionMismatch(datasetId, termsVersion, d.termsVersion);
        if (d.paymentToken != paymentToken) revert PaymentTokenMismatch(datasetId, paymentToken, d.paymentToken);
        if (d.price > maxPrice) revert PriceAboveLimit(d.price, maxPrice);
        if (terms.permissionFor(purpose) == Permission.NotAllowed) revert PurposeNotAllowed(datasetId, purpose);
        if (!BN254.isOnCurve(buyerKey)) revert InvalidBuyerKey();
        if (!storageMarket.isServable(datasetId)) revert DatasetNotServable(datasetId);

        licenseId = ++licenseCount;
        uint64 deadline = uint64(block.timestamp) + deliveryWindow;
        License storage l = _licenses[licenseId];
        l.datasetId = datasetId;
        l.buyer = msg.sender;
        l.purpose = purpose;
        l.status = Status.Pending;
        l.revocable = terms.revocable;
        l.termsVersion = d.termsVersion;
        l.purchasedAt = uint64(block.timestamp);
        l.deliveryDeadline = deadline;
        l.duration = terms.licenseDuration;
        l.paymentToken = d.paymentToken;
        l.price = d.price;
        l.buyerKeyHash = keccak256(abi.encode(buyerKey.x, buyerKey.y));
        l.termsHash = terms.termsHash;
        emit LicensePurchased(
            licenseId, datasetId, msg.sender, purpose, buyerKey.x, buyerKey.y, d.paymentToken, d.price, deadline
        );

        if (d.price > 0) {
            IERC20 token = IERC20(d.paymentToken);
            uint256 before = token.balanceOf(address(this));
            token.safeTransferFrom(msg.sender, address(this), d.price);
            if (token.balanceOf(address(this)) - before != d.price) revert UnsupportedToken(d.paymentToken);
        }
    }

    /// @notice Deliver the data key to the buyer: `r` = r*G and `sealedKey` = key XOR
    /// `deliveryMask(licenseId, r*B)`. Only the owner or its key agent, once, before the deadline,
    /// and only while consent stands and the dataset is servable (else the buyer refunds later). The escrow is held until the dispute window closes.
    function deliverKey(uint256 licenseId, G1Point calldata r, bytes32 sealedKey) external nonReentrant {
        License storage l = _licenses[licenseId];
        if (l.status == Status.None) revert UnknownLicense(licenseId);
        if (!registry.canReleaseKeys(l.datasetId, msg.sender)) revert NotKeyReleaser(l.datasetId, msg.sender);
        if (l.status != Status.Pending) revert NotPending(licenseId, l.status);
        if (block.timestamp > l.deliveryDeadline) revert DeliveryDeadlinePassed(licenseId, l.deliveryDeadline);
        if (consentRevokedAt[l.datasetId] != 0) revert ConsentIsRevoked(l.datasetId);
        if (!BN254.isOnCurve(r)) revert InvalidDeliveryPoint();
        if (!storageMarket.isServable(l.datasetId)) revert DatasetNotServable(l.datasetId);

        l.status = Status.Delivered;
        l.deliveredAt = uint64(block.timestamp);
        l.expiresAt = l.duration == 0 ? 0 : uint64(block.timestamp) + l.duration;
        l.deliveryHash = keccak256(abi.encode(r.x, r.y, sealedKey));
        emit KeyDelivered(
            licenseId, l.datasetId, r.x, r.y, sealedKey, l.expiresAt, uint64(block.timestamp) + disputeWindow
        );
    }

    /// @notice The buyer shows that the delivered key is wrong by revealing its per-license secret
    /// `buyerSecret` (b with b*G = B), with the delivery (`r`, `sealedKey`) from KeyDelivered.
    /// Refunds the buyer and counts the rejection against the owner if the key b*R opens does not
    /// match the dataset's key commitment; reverts `DeliveryIsValid` (nothing changes) if it does.
    function dispute(uint256 licenseId, uint256 buyerSecret, G1Point calldata r, bytes32 sealedKey)
        external
        nonReentrant
    {
        License storage l = _licenses[licenseId];
        if (l.status == Status.None) revert UnknownLicense(licenseId);
        if (msg.sender != l.buyer) revert NotBuyer(licenseId, msg.sender);
        if (l.status != Status.Delivered || l.paid) revert NotDisputable(licenseId, l.status, l.paid);
        uint64 closes = l.deliveredAt + disputeWindow;
        if (block.timestamp > closes) revert DisputeWindowClosed(licenseId, closes);
        if (keccak256(abi.encode(r.x, r.y, sealedKey)) != l.deliveryHash) revert DeliveryMismatch(licenseId);
        (bool ok, uint256 bx, uint256 by) = BN254.mulGenerator(buyerSecret);
        if (!ok || keccak256(abi.encode(bx, by)) != l.buyerKeyHash) revert InvalidReveal(licenseId);
        (bool valid, uint256 sx, uint256 sy) = BN254.mul(r.x, r.y, buyerSecret); // false: R is no curve point
        if (valid) {
            bytes32 key = sealedKey ^ deliveryMask(licenseId, sx, sy);
            (bytes32 commitment, bytes32 salt) = registry.keyCommitmentOf(l.datasetId);
            if (sha256(abi.encodePacked(KEY_COMMITMENT_TAG, salt, key)) == commitment) {
                revert DeliveryIsValid(licenseId);
            }
        }
        l.status = Status.Rejected;
        address owner = registry.ownerOf(l.datasetId);
        rejectedDeliveries[owner] += 1;
        emit DeliveryRejected(licenseId, l.datasetId, owner, l.price);
        if (l.price > 0) IERC20(l.paymentToken).safeTransfer(l.buyer, l.price);
    }

    /// @notice Pay the escrow of a delivered license to the dataset's owner once its dispute
    /// window has closed. Anyone may call it; the money only goes to the owner.
    function claimPayment(uint256 licenseId) external nonReentrant {
        License storage l = _licenses[licenseId];
        if (l.status == Status.None) revert UnknownLicense(licenseId);
        if (l.status != Status.Delivered || l.paid) revert NotDisputable(licenseId, l.status, l.paid);
        uint64 closes = l.deliveredAt + disputeWindow;
        if (block.timestamp <= closes) revert DisputeWindowOpen(licenseId, closes);
        l.paid = true;
        address owner = registry.ownerOf(l.datasetId);
        emit PaymentClaimed(licenseId, owner, l.price);
        if (l.price > 0) IERC20(l.paymentToken).safeTransfer(owner, l.price);
    }

    /// @notice The one-time pad of a delivery: keccak256(DELIVERY_TAG, chain id, this contract,
    /// licenseId, S) for the shared point S = r*B = b*R. Bound to the license, so a delivery
    /// cannot be replayed to another license or deployment.
    function deliveryMask(uint256 licenseId, uint256 sx, uint256 sy) public view returns (bytes32) {
        return keccak256(abi.encode(DELIVERY_TAG, block.chainid, address(this), licenseId, sx, sy));
    }

    /// @notice Return the escrow to the buyer when no key came in time, or consent was revoked
    /// before delivery. Anyone may call it; the money only goes to the buyer.
    function refund(uint256 licenseId) external nonReentrant {
        License storage l = _licenses[licenseId];
        if (l.status == Status.None) revert UnknownLicense(licenseId);
        if (l.status != Status.Pending) revert NotPending(licenseId, l.status);
        if (block.timestamp <= l.deliveryDeadline && consentRevokedAt[l.datasetId] == 0) {
            revert RefundNotYetAllowed(licenseId, l.deliveryDeadline);
        }
        l.status = Status.Refunded;
        emit Refunded(licenseId, l.buyer, l.price);
        if (l.price > 0) IERC20(l.paymentToken).safeTransfer(l.buyer, l.price);
    }

    /// @notice The owner withdraws consent: no new licenses and no key release from now on;
    /// licenses granted under revocable terms end now. Irreversible (register anew to relist).
    function revokeConsent(uint256 datasetId) external {
        if (registry.ownerOf(datasetId) != msg.sender) revert NotDatasetOwner(datasetId, msg.sender);
        if (consentRevokedAt[datasetId] != 0) revert AlreadyRevoked(datasetId);
        consentRevokedAt[datasetId] = uint64(block.timestamp);
        emit ConsentRevoked(datasetId, uint64(block.timestamp));
    }

    /// @notice True while the license's key was delivered, it has not expired, and (for revocable
    /// terms) consent still stands. What an auditor checks.
    /// A delivered key is valid during its dispute window too (a rejected one is not).
    function isLicenseValid(uint256 licenseId) external view returns (bool) {
        License storage l = _licenses[licenseId];
        if (l.status != Status.Delivered) return false;
        if (l.expiresAt != 0 && block.timestamp >= l.expiresAt) return false;
        if (l.revocable && consentRevokedAt[l.datasetId] != 0) return false;
        return true;
    }

    function getLicense(uint256 licenseId) external view returns (License memory l) {
        l = _licenses[licenseId];
        if (l.status == Status.None) revert UnknownLicense(licenseId);
    }
}
