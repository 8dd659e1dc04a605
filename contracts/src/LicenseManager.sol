// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {BN254, G1Point} from "./BN254.sol";
import {DatasetRegistry} from "./DatasetRegistry.sol";
import {KeyGuardians} from "./KeyGuardians.sol";
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
///
/// Guardians (docs/guardians.md): a dataset's key can also reach the buyer as t of the m Shamir
/// pieces its `KeyGuardians` hold, each sealed to B like the key (`deliverKeyPiece`); the license is
/// delivered at t pieces, whichever of that and `deliverKey` comes first. `mayRelease` is the one
/// question every releaser (owner's agent, guardians) asks. A bad piece is proven by the buyer
/// (`disputePieces`): its guardian is counted and banned for the license, and the buyer rotates to a
/// fresh key, since revealing b opened the (fewer than t) pieces delivered so far.
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

    /// @notice The guardian path: which pieces of which epoch a license has received.
    struct Pieces {
        uint32 epoch; // the guardian epoch of the pieces counted; a newer epoch starts over
        uint32 delivered; // bit i-1: piece i counts (delivered, and not proven bad)
        uint32 revealed; // bit i-1: piece i was opened on-chain in a dispute (value in _revealedPiece)
        uint32 banned; // bit i-1: piece i was proven bad: that guardian delivers no more for this license
        uint8 count;
        bool complete; // the license was delivered by t pieces
    }

    KeyGuardians public immutable guardians;
    bytes32 public constant PIECE_DELIVERY_TAG = keccak256("datasov/key-piece-delivery/v1");
    uint256 private constant FIELD_PRIME = 2 ** 256 - 189;
    uint256 private constant BPS = 10_000;
    mapping(uint256 licenseId => Pieces) private _pieces;
    mapping(uint256 licenseId => mapping(uint256 index => bytes32)) private _pieceHash;
    mapping(uint256 licenseId => mapping(uint256 index => bytes32)) private _revealedPiece;
    /// @notice Pieces a buyer proved wrong, per guardian: what an owner checks before choosing it.
    mapping(address guardian => uint256) public badPieces;

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
    event KeyPieceDelivered(
        uint256 indexed licenseId,
        uint256 indexed datasetId,
        address indexed guardian,
        uint32 epoch,
        uint8 index,
        uint256 rX,
        uint256 rY,
        bytes32 sealedPiece
    );
    event PiecesDelivered(uint256 indexed licenseId, uint256 indexed datasetId, uint32 epoch, uint64 expiresAt, uint64 disputeDeadline);
    event PieceRejected(uint256 indexed licenseId, uint256 indexed datasetId, address indexed guardian, uint8 index);
    event BuyerKeyRotated(uint256 indexed licenseId, uint256 buyerKeyX, uint256 buyerKeyY);
    event GuardianPaid(uint256 indexed licenseId, address indexed guardian, uint256 amount);

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
    error NotGuardian(uint256 datasetId, uint8 index, address caller);
    error PieceAlreadyDelivered(uint256 licenseId, uint8 index);
    error GuardianBanned(uint256 licenseId, uint8 index);
    error PiecesAreValid(uint256 licenseId);

    constructor(
        DatasetRegistry registry_,
        IDatasetHealth storageMarket_,
        KeyGuardians guardians_,
        uint64 deliveryWindow_,
        uint64 disputeWindow_
    ) {
        registry = registry_;
        storageMarket = storageMarket_;
        guardians = guardians_;
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
        Pieces storage p = _pieces[licenseId];
        uint256 ownerShare = l.price;
        if (p.complete && l.price > 0) {
            uint256 fee = (l.price * guardians.feeOf(l.datasetId, p.epoch)) / BPS;
            for (uint256 i = 1; fee > 0 && i <= 32; i++) {
                if (p.delivered & (_bit(i)) == 0) continue;
                address g = guardians.guardianAt(l.datasetId, p.epoch, i);
                ownerShare -= fee;
                emit GuardianPaid(licenseId, g, fee);
                IERC20(l.paymentToken).safeTransfer(g, fee);
            }
        }
        emit PaymentClaimed(licenseId, owner, ownerShare);
        if (ownerShare > 0) IERC20(l.paymentToken).safeTransfer(owner, ownerShare);
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

    // ------------------------------------------------------------------- guardians ----

    /// @notice May a key (or a key piece) be released for this license now? Pending, before its
    /// delivery deadline, consent standing, its purpose allowed by the current terms, the dataset
    /// servable. The one check the owner's agent, every guardian and the tests use; `deliverKeyPiece`
    /// reverts with the named reason where this is false. `deliverKey` (the owner's own release)
    /// does not re-read the terms on-chain (~12k gas): the owner's agent asks this view first.
    function mayRelease(uint256 licenseId) public view returns (bool) {
        License storage l = _licenses[licenseId];
        if (l.status != Status.Pending || block.timestamp > l.deliveryDeadline) return false;
        if (consentRevokedAt[l.datasetId] != 0) return false;
        if (registry.getTerms(l.datasetId).permissionFor(l.purpose) == Permission.NotAllowed) return false;
        return storageMarket.isServable(l.datasetId);
    }

    /// @notice A guardian delivers its piece `index` for a license: `r` = r*G and `sealedPiece` =
    /// piece XOR `pieceMask(licenseId, index, r*B)`. Only the guardian holding that piece in the
    /// dataset's current epoch, once per license, only while `mayRelease`. At `threshold` pieces
    /// the license is delivered (the escrow then waits out the dispute window as for deliverKey).
    function deliverKeyPiece(uint256 licenseId, uint8 index, G1Point calldata r, bytes32 sealedPiece)
        external
        nonReentrant
    {
        License storage l = _licenses[licenseId];
        if (l.status == Status.None) revert UnknownLicense(licenseId);
        uint256 datasetId = l.datasetId;
        uint32 epoch = guardians.epochOf(datasetId);
        if (epoch == 0 || guardians.guardianAt(datasetId, epoch, index) != msg.sender) {
            revert NotGuardian(datasetId, index, msg.sender);
        }
        if (l.status != Status.Pending) revert NotPending(licenseId, l.status);
        if (block.timestamp > l.deliveryDeadline) revert DeliveryDeadlinePassed(licenseId, l.deliveryDeadline);
        if (consentRevokedAt[datasetId] != 0) revert ConsentIsRevoked(datasetId);
        if (registry.getTerms(datasetId).permissionFor(l.purpose) == Permission.NotAllowed) {
            revert PurposeNotAllowed(datasetId, l.purpose);
        }
        if (!BN254.isOnCurve(r)) revert InvalidDeliveryPoint();
        if (!storageMarket.isServable(datasetId)) revert DatasetNotServable(datasetId);

        Pieces storage p = _pieces[licenseId];
        if (p.epoch != epoch) {
            // guardians replaced since: pieces of the old polynomial neither count nor combine
            p.epoch = epoch;
            p.delivered = 0;
            p.revealed = 0;
            p.banned = 0;
            p.count = 0;
        }
        uint32 bit = _bit(index);
        if (p.banned & bit != 0) revert GuardianBanned(licenseId, index);
        if (p.delivered & bit != 0) revert PieceAlreadyDelivered(licenseId, index);
        p.delivered |= bit;
        p.count += 1;
        _pieceHash[licenseId][index] = keccak256(abi.encode(r.x, r.y, sealedPiece));
        emit KeyPieceDelivered(licenseId, datasetId, msg.sender, epoch, index, r.x, r.y, sealedPiece);
        if (p.count >= guardians.thresholdOf(datasetId, epoch)) {
            p.complete = true;
            l.status = Status.Delivered;
            l.deliveredAt = uint64(block.timestamp);
            l.expiresAt = l.duration == 0 ? 0 : uint64(block.timestamp) + l.duration;
            emit PiecesDelivered(licenseId, datasetId, epoch, l.expiresAt, uint64(block.timestamp) + disputeWindow);
        }
    }

    struct PieceReveal {
        uint8 index;
        G1Point r;
        bytes32 sealedPiece;
    }

    /// @notice The buyer proves delivered pieces wrong by revealing its secret b, with every piece
    /// delivered (and not already opened) since (`revealed`, from KeyPieceDelivered). Each is opened
    /// with b*R and checked against its commitment. Pieces that fail are dropped, their guardians
    /// counted in `badPieces` and banned for this license; the license goes back to Pending and
    /// continues under `newBuyerKey` (b is public now; the good pieces, fewer than t, stay counted).
    /// If every piece is good and t of them are in, they are combined: a key that misses the key
    /// commitment means the owner committed inconsistent pieces: refunded as in `dispute`.
    /// Otherwise reverts `PiecesAreValid` (nothing changes).
    function disputePieces(
        uint256 licenseId,
        uint256 buyerSecret,
        PieceReveal[] calldata revealed,
        G1Point calldata newBuyerKey
    ) external nonReentrant {
        License storage l = _licenses[licenseId];
        if (l.status == Status.None) revert UnknownLicense(licenseId);
        if (msg.sender != l.buyer) revert NotBuyer(licenseId, msg.sender);
        Pieces storage p = _pieces[licenseId];
        bool byPieces = l.status == Status.Delivered && p.complete && !l.paid;
        if (!(byPieces || l.status == Status.Pending) || p.count == 0) {
            revert NotDisputable(licenseId, l.status, l.paid);
        }
        if (byPieces && block.timestamp > l.deliveredAt + disputeWindow) {
            revert DisputeWindowClosed(licenseId, l.deliveredAt + disputeWindow);
        }
        if (revealed.length + _popcount(p.revealed) != p.count) revert DeliveryMismatch(licenseId);
        {
            (bool ok, uint256 bx, uint256 by) = BN254.mulGenerator(buyerSecret);
            if (!ok || keccak256(abi.encode(bx, by)) != l.buyerKeyHash) revert InvalidReveal(licenseId);
        }
        uint32 bad = _openPieces(licenseId, l.datasetId, p, buyerSecret, revealed);
        if (bad != 0) {
            if (!BN254.isOnCurve(newBuyerKey)) revert InvalidBuyerKey();
            _dropBad(licenseId, l.datasetId, p, bad);
            l.buyerKeyHash = keccak256(abi.encode(newBuyerKey.x, newBuyerKey.y));
            if (l.status == Status.Delivered) {
                l.status = Status.Pending;
                l.deliveredAt = 0;
                l.expiresAt = 0;
                p.complete = false;
            }
            emit BuyerKeyRotated(licenseId, newBuyerKey.x, newBuyerKey.y);
            return;
        }
        if (!byPieces || _combinedKeyIsCommitted(licenseId, l.datasetId, p)) revert PiecesAreValid(licenseId);
        l.status = Status.Rejected;
        address owner = registry.ownerOf(l.datasetId);
        rejectedDeliveries[owner] += 1;
        emit DeliveryRejected(licenseId, l.datasetId, owner, l.price);
        if (l.price > 0) IERC20(l.paymentToken).safeTransfer(l.buyer, l.price);
    }

    /// @dev Opens every revealed piece; stores the good ones' values; returns the set of bad ones.
    function _openPieces(
        uint256 licenseId,
        uint256 datasetId,
        Pieces storage p,
        uint256 secret,
        PieceReveal[] calldata revealed
    ) private returns (uint32 bad) {
        uint32 seen = p.revealed;
        for (uint256 k = 0; k < revealed.length; k++) {
            PieceReveal calldata rv = revealed[k];
            uint32 bit = rv.index == 0 || rv.index > 32 ? 0 : _bit(rv.index);
            if (bit == 0 || p.delivered & bit == 0 || seen & bit != 0) revert DeliveryMismatch(licenseId);
            seen |= bit;
            if (keccak256(abi.encode(rv.r.x, rv.r.y, rv.sealedPiece)) != _pieceHash[licenseId][rv.index]) {
                revert DeliveryMismatch(licenseId);
            }
            (bool good, bytes32 value) = _openPiece(licenseId, datasetId, p.epoch, secret, rv);
            if (good) _revealedPiece[licenseId][rv.index] = value;
            else bad |= bit;
        }
        p.revealed = seen & ~bad;
    }

    function _openPiece(uint256 licenseId, uint256 datasetId, uint32 epoch, uint256 secret, PieceReveal calldata rv)
        private
        view
        returns (bool good, bytes32 value)
    {
        (bool ok, uint256 sx, uint256 sy) = BN254.mul(rv.r.x, rv.r.y, secret); // false: R is no curve point
        value = rv.sealedPiece ^ pieceMask(licenseId, rv.index, sx, sy);
        good = ok && guardians.checkPiece(datasetId, epoch, rv.index, value);
    }

    function _dropBad(uint256 licenseId, uint256 datasetId, Pieces storage p, uint32 bad) private {
        for (uint256 i = 1; i <= 32; i++) {
            uint32 bit = _bit(i);
            if (bad & bit == 0) continue;
            address g = guardians.guardianAt(datasetId, p.epoch, i);
            badPieces[g] += 1;
            p.count -= 1;
            emit PieceRejected(licenseId, datasetId, g, uint8(i));
        }
        p.delivered &= ~bad;
        p.banned |= bad;
    }

    /// @dev Lagrange interpolation at 0 over the opened pieces, checked against the key commitment.
    function _combinedKeyIsCommitted(uint256 licenseId, uint256 datasetId, Pieces storage p)
        private
        view
        returns (bool)
    {
        uint256[] memory xs = new uint256[](p.count);
        uint256 n = 0;
        for (uint256 i = 1; i <= 32; i++) {
            if (p.revealed & (_bit(i)) != 0) xs[n++] = i;
        }
        uint256 key = 0;
        for (uint256 a = 0; a < n; a++) {
            uint256 num = 1;
            uint256 den = 1;
            for (uint256 b = 0; b < n; b++) {
                if (a == b) continue;
                num = mulmod(num, xs[b], FIELD_PRIME);
                den = mulmod(den, xs[b] + FIELD_PRIME - xs[a], FIELD_PRIME);
            }
            uint256 y = uint256(_revealedPiece[licenseId][xs[a]]);
            key = addmod(key, mulmod(mulmod(num, _inverse(den), FIELD_PRIME), y, FIELD_PRIME), FIELD_PRIME);
        }
        (bytes32 commitment, bytes32 salt) = registry.keyCommitmentOf(datasetId);
        return sha256(abi.encodePacked(KEY_COMMITMENT_TAG, salt, bytes32(key))) == commitment;
    }

    function _inverse(uint256 a) private view returns (uint256) {
        (bool ok, bytes memory out) =
            address(0x05).staticcall(abi.encode(uint256(32), uint256(32), uint256(32), a, FIELD_PRIME - 2, FIELD_PRIME));
        require(ok);
        return abi.decode(out, (uint256));
    }

    function _bit(uint256 index) private pure returns (uint32) {
        return uint32(1 << (index - 1));
    }

    function _popcount(uint32 v) private pure returns (uint256 c) {
        for (; v != 0; v &= v - 1) c++;
    }

    /// @notice The one-time pad of piece `index` for a license: like `deliveryMask`, bound to the
    /// piece index too, so one guardian's delivery cannot pass for another's.
    function pieceMask(uint256 licenseId, uint8 index, uint256 sx, uint256 sy) public view returns (bytes32) {
        return keccak256(abi.encode(PIECE_DELIVERY_TAG, block.chainid, address(this), licenseId, index, sx, sy));
    }

    /// @notice The pieces a license has received: epoch, counted set, opened set, banned set, count, complete.
    function piecesOf(uint256 licenseId) external view returns (Pieces memory) {
        return _pieces[licenseId];
    }

    function getLicense(uint256 licenseId) external view returns (License memory l) {
        l = _licenses[licenseId];
        if (l.status == Status.None) revert UnknownLicense(licenseId);
    }
}
