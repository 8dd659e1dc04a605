// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {DatasetRegistry} from "./DatasetRegistry.sol";
import {LicenseTerms, Permission, Purpose, TermsLib} from "./Types.sol";

/// @title LicenseManager
/// @notice Consent-checked licensing with escrow. A buyer pays into escrow for a purpose; the
/// owner (or its key agent) checks consent off-chain, seals the data key to the buyer's X25519
/// key and delivers it here, which releases the escrow to the owner. No key before the delivery
/// deadline (or consent revoked meanwhile): the buyer takes the payment back. Consent is checked
/// again on-chain at delivery. Revocation stops new licenses; licenses bought under revocable
/// terms end with it (one dataset-level event; `isLicenseValid` reflects it).
contract LicenseManager is ReentrancyGuard {
    using SafeERC20 for IERC20;
    using TermsLib for LicenseTerms;

    enum Status {
        None,
        Pending,
        Delivered,
        Refunded
    }

    struct License {
        uint256 datasetId;
        address buyer;
        Purpose purpose;
        Status status;
        bool revocable;
        uint32 termsVersion;
        uint64 purchasedAt;
        uint64 deliveryDeadline;
        uint64 deliveredAt;
        uint64 duration; // seconds from delivery, 0 = perpetual
        uint64 expiresAt; // set at delivery; 0 = perpetual
        address paymentToken;
        uint256 price;
        bytes32 buyerKey; // X25519 public key the data key is sealed to
        bytes32 termsHash;
    }

    /// @dev libsodium sealed box of a 32-byte key: 32 (ephemeral pk) + 16 (MAC) + 32.
    uint256 public constant SEALED_KEY_LENGTH = 80;

    DatasetRegistry public immutable registry;
    uint64 public immutable deliveryWindow;

    uint256 public licenseCount;
    mapping(uint256 licenseId => License) private _licenses;
    mapping(uint256 datasetId => uint64) public consentRevokedAt;

    event LicensePurchased(
        uint256 indexed licenseId,
        uint256 indexed datasetId,
        address indexed buyer,
        Purpose purpose,
        bytes32 buyerKey,
        address paymentToken,
        uint256 price,
        uint64 deliveryDeadline
    );
    event KeyDelivered(uint256 indexed licenseId, uint256 indexed datasetId, bytes sealedKey, uint64 expiresAt);
    event Refunded(uint256 indexed licenseId, address indexed buyer, uint256 amount);
    event ConsentRevoked(uint256 indexed datasetId, uint64 revokedAt);

    error UnknownLicense(uint256 licenseId);
    error ConsentIsRevoked(uint256 datasetId);
    error PurposeNotAllowed(uint256 datasetId, Purpose purpose);
    error PriceAboveLimit(uint256 price, uint256 maxPrice);
    error InvalidBuyerKey();
    error NotKeyReleaser(uint256 datasetId, address caller);
    error NotPending(uint256 licenseId, Status status);
    error DeliveryDeadlinePassed(uint256 licenseId, uint64 deadline);
    error RefundNotYetAllowed(uint256 licenseId, uint64 deadline);
    error InvalidSealedKey(uint256 length);
    error NotDatasetOwner(uint256 datasetId, address caller);
    error AlreadyRevoked(uint256 datasetId);
    error UnsupportedToken(address token);

    constructor(DatasetRegistry registry_, uint64 deliveryWindow_) {
        registry = registry_;
        deliveryWindow = deliveryWindow_;
    }

    /// @notice Buy a license for `purpose`, paying the dataset's price (at most `maxPrice`, so a
    /// price raised while the transaction was pending cannot surprise the buyer) into escrow.
    /// The buyer must have approved this contract for the price in the dataset's payment token.
    function purchase(uint256 datasetId, Purpose purpose, bytes32 buyerKey, uint256 maxPrice)
        external
        nonReentrant
        returns (uint256 licenseId)
    {
        DatasetRegistry.Dataset memory d = registry.getDataset(datasetId); // reverts if unknown
        LicenseTerms memory terms = registry.getTerms(datasetId);
        if (consentRevokedAt[datasetId] != 0) revert ConsentIsRevoked(datasetId);
        if (terms.permissionFor(purpose) == Permission.NotAllowed) revert PurposeNotAllowed(datasetId, purpose);
        if (buyerKey == bytes32(0)) revert InvalidBuyerKey();
        if (d.price > maxPrice) revert PriceAboveLimit(d.price, maxPrice);

        licenseId = ++licenseCount;
        uint64 deadline = uint64(block.timestamp) + deliveryWindow;
        _licenses[licenseId] = License({
            datasetId: datasetId,
            buyer: msg.sender,
            purpose: purpose,
            status: Status.Pending,
            revocable: terms.revocable,
            termsVersion: d.termsVersion,
            purchasedAt: uint64(block.timestamp),
            deliveryDeadline: deadline,
            deliveredAt: 0,
            duration: terms.licenseDuration,
            expiresAt: 0,
            paymentToken: d.paymentToken,
            price: d.price,
            buyerKey: buyerKey,
            termsHash: terms.termsHash
        });
        emit LicensePurchased(licenseId, datasetId, msg.sender, purpose, buyerKey, d.paymentToken, d.price, deadline);

        if (d.price > 0) {
            IERC20 token = IERC20(d.paymentToken);
            uint256 before = token.balanceOf(address(this));
            token.safeTransferFrom(msg.sender, address(this), d.price);
            if (token.balanceOf(address(this)) - before != d.price) revert UnsupportedToken(d.paymentToken);
        }
    }

    /// @notice Deliver the data key sealed to the buyer; releases the escrow to the dataset owner.
    /// Only the owner or its key agent, once, before the deadline, and only while consent stands.
    function deliverKey(uint256 licenseId, bytes calldata sealedKey) external nonReentrant {
        License storage l = _licenses[licenseId];
        if (l.status == Status.None) revert UnknownLicense(licenseId);
        if (!registry.canReleaseKeys(l.datasetId, msg.sender)) revert NotKeyReleaser(l.datasetId, msg.sender);
        if (l.status != Status.Pending) revert NotPending(licenseId, l.status);
        if (block.timestamp > l.deliveryDeadline) revert DeliveryDeadlinePassed(licenseId, l.deliveryDeadline);
        if (consentRevokedAt[l.datasetId] != 0) revert ConsentIsRevoked(l.datasetId);
        if (sealedKey.length != SEALED_KEY_LENGTH) revert InvalidSealedKey(sealedKey.length);

        l.status = Status.Delivered;
        l.deliveredAt = uint64(block.timestamp);
        l.expiresAt = l.duration == 0 ? 0 : uint64(block.timestamp) + l.duration;
        address owner = registry.ownerOf(l.datasetId);
        emit KeyDelivered(licenseId, l.datasetId, sealedKey, l.expiresAt);

        if (l.price > 0) IERC20(l.paymentToken).safeTransfer(owner, l.price);
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
