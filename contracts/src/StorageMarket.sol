// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {DatasetRegistry} from "./DatasetRegistry.sol";
import {LicenseTerms} from "./Types.sol";
import {MerkleVerifier} from "./MerkleVerifier.sol";
import {RevealedLeaves} from "./RevealedLeaves.sol";

/// @title StorageMarket
/// @notice Storage deals with on-chain proofs of storage.
///
/// Operators register with a stake. A data owner opens a deal for a registered dataset: one share
/// per operator, a duration in epochs and a fee per share per epoch, all paid into escrow. Epochs
/// are `epochBlocks` blocks long; the seed of epoch e is the hash of its first block, so it is fixed
/// before anyone can prove. What is trusted (see `epochSeed`): the producer of an epoch's first
/// block can grind its hash, so it must not be a provider (or collude with one) that dropped data.
/// Each epoch picks one leaf of every share, never one a proof has revealed in the current round
/// (see `challengeLeaf`); the
/// operator proves it during the epoch (leaf -> share root -> commitment root, sha256 precompile)
/// and earns the epoch's fee. During the following epoch anyone may report a missing proof: the
/// operator is slashed (half to the reporter, half to the data owner; the reporter's half is burned
/// when the owner reports its own deal) and the share marked faulty
/// until the owner replaces its provider. Fees are counted per share and claimed in one go
/// (`claimFees`), then pulled with `withdraw`. Unearned escrow goes back to the owner when the
/// deal is settled, once the report window of its last epoch has closed (also after the owner
/// terminates it).
/// Gas: a proof reads two deal slots, one share slot and one revealed-leaf word, and rewrites the
/// share slot and the word; its calldata is packed (`proveStorage`), and a call emits one event.
/// Operators announce their node (`announce`: an event carrying a record signed off-chain by the
/// operator key, see contracts/announcements.py; only the sender's stake is checked here) and leave
/// in two steps: `leave` stops new deals at once; the stake comes back (`withdrawStake` below the
/// minimum) only after `EXIT_DELAY_EPOCHS` and once no accepted share is live (every deal ended and
/// settled, or the share reported and handed over by `replaceProvider`), so a missed proof is still
/// slashed while leaving.
/// Invariant: token balance = stakes + withdrawable balances + sum over open deals (escrow - paid)
/// + burned (the reporter's half of slashes the deal's owner reported itself).
contract StorageMarket is ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Operator {
        uint256 stake;
        uint32 activeShares;
        bool registered;
        uint32 exitEpoch; // 0 = not leaving; else the first epoch the stake may leave
    }

    struct Deal {
        bytes32 commitmentRoot; // slot 0 (read by every proof)
        uint40 leafCount; // slot 1 (read by every proof): leaves per share
        uint32 leafSize;
        uint32 lastLeafSize; // bytes in the last leaf of a share
        uint16 n;
        uint32 startEpoch; // first epoch with challenges
        uint32 endEpoch; // first epoch after the deal
        bool settled;
        uint16 k; // shares needed to rebuild the dataset (from the registry)
        uint16 healthy; // shares accepted by their provider and not faulty
        address owner;
        uint256 datasetId;
        uint256 feePerShareEpoch;
        uint256 escrow;
        uint256 paid; // fees claimed by providers
    }

    /// @dev One storage slot, the only one a proof writes. Only the current and the previous
    /// epoch can be proven or reported, so the latest proven epoch and whether the epoch before it
    /// was proven too say everything still needed: a proven epoch is never reportable.
    struct Share {
        address provider;
        uint32 activeFrom; // first epoch this provider must prove; 0 = not accepted yet
        uint32 lastProven; // latest proven epoch + 1; 0 = none
        uint16 unclaimed; // proven epochs whose fees are not yet claimed (claimed at the limit)
        bool faulty;
        bool previousProven; // epoch lastProven - 2 was proven too
    }

    DatasetRegistry public immutable registry;
    IERC20 public immutable token;
    uint256 public immutable minStake;
    uint256 public immutable slashAmount;
    uint64 public immutable epochBlocks;
    /// @notice Epochs between `leave` and the earliest unstaking (the report window of the epoch
    /// it left in, and one more).
    uint32 public constant EXIT_DELAY_EPOCHS = 2;
    /// @notice Longest announcement record accepted, in bytes.
    uint256 public constant MAX_ANNOUNCEMENT = 2048;
    uint256 public immutable genesisBlock;
    /// @notice The commitment root of a draft deal (`openDraftDeal`) until `commitDeal`: no proof
    /// can reach it (that would take a SHA-256 preimage of it), and no share of it can be accepted.
    bytes32 public constant PENDING_ROOT = bytes32(uint256(1));

    uint256 public dealCount;
    mapping(uint256 dealId => Deal) private _deals;
    mapping(uint256 dealId => mapping(uint256 shareIndex => Share)) private _shares;
    mapping(address operator => Operator) private _operators;
    mapping(address account => uint256) public balances;
    /// @notice Reporter rewards withheld from owners who reported their own deal: held here for
    /// good, owed to nobody.
    uint256 public burned;
    /// @dev Leaves revealed by proofs, per commitment root and share: every deal over the same
    /// data (a renewal, a copy registered again) shares them, since a leaf in calldata answers any
    /// of them. A replaced provider inherits them too: the leaves are still public.
    mapping(bytes32 commitmentRoot => mapping(uint256 shareIndex => mapping(uint256 word => uint256))) private
        _revealed;
    /// @dev The latest two deals opened for a dataset (a renewal must not hide the deal it renews).
    mapping(uint256 datasetId => DatasetDeals) private _datasetDeals;

    struct DatasetDeals {
        uint128 latest;
        uint128 previous;
    }

    event OperatorRegistered(address indexed operator, uint256 stake);
    event StakeChanged(address indexed operator, uint256 stake);
    event Announced(address indexed operator, bytes record);
    event OperatorLeaving(address indexed operator, uint32 exitEpoch);
    event DealOpened(
        uint256 indexed dealId,
        uint256 indexed datasetId,
        address indexed owner,
        address[] providers,
        uint32 startEpoch,
        uint32 endEpoch,
        uint256 feePerShareEpoch
    );
    event DealDrafted(uint256 indexed dealId, address indexed owner);
    event ShareAccepted(uint256 indexed dealId, uint16 shareIndex, address indexed provider, uint32 activeFrom);
    /// @notice One per `proveStorage` call: `shares` lists what was proven, 10 bytes a proof
    /// (dealId as uint64, then shareIndex as uint16, big-endian), in the call's order.
    event StorageProofs(address indexed provider, uint32 epoch, bytes shares);
    event FeesClaimed(uint256 indexed dealId, uint16 shareIndex, address indexed provider, uint256 amount);
    event ProofMissed(
        uint256 indexed dealId, uint16 shareIndex, uint32 indexed epoch, address indexed provider, uint256 slashed
    );
    event ProviderReplaced(uint256 indexed dealId, uint16 shareIndex, address oldProvider, address indexed newProvider);
    event DealTerminated(uint256 indexed dealId, uint32 endEpoch);
    event DealSettled(uint256 indexed dealId, uint256 refunded);
    event Withdrawn(address indexed account, uint256 amount);

    error InvalidParameters(string reason);
    error NotRegistered(address operator);
    error AlreadyRegistered(address operator);
    error StakeTooLow(uint256 stake, uint256 required);
    error StakeLocked(address operator, uint32 activeShares);
    error OperatorIsLeaving(address operator, uint32 exitEpoch);
    error ExitNotReady(address operator, uint32 exitEpoch);
    error AnnouncementTooLong(uint256 length, uint256 limit);
    error NotDatasetOwner(uint256 datasetId, address caller);
    error NotDealOwner(uint256 dealId, address caller);
    error UnknownDeal(uint256 dealId);
    error InvalidShare(uint256 dealId, uint256 shareIndex);
    error WrongProviderCount(uint256 expected, uint256 got);
    error DuplicateProvider(address provider);
    error NotProvider(uint256 dealId, uint256 shareIndex, address caller);
    error AlreadyAccepted(uint256 dealId, uint256 shareIndex);
    error DealOver(uint256 dealId);
    error NotDue(uint256 dealId, uint256 shareIndex, uint32 epoch);
    error WrongEpoch(uint32 epoch, uint32 current);
    error SeedNotYetAvailable(uint32 epoch);
    error AlreadyProven(uint256 dealId, uint256 shareIndex, uint32 epoch);
    error MalformedProofs(uint256 length, uint256 parsed);
    error InvalidProof(uint256 dealId, uint256 shareIndex, uint32 epoch);
    error DeadlineNotPassed(uint32 epoch, uint32 current);
    error ReportWindowClosed(uint32 epoch, uint32 current);
    error ShareNotReplaceable(uint256 dealId, uint256 shareIndex);
    error DealNotOver(uint256 dealId, uint32 endEpoch);
    error AlreadySettled(uint256 dealId);
    error NothingToWithdraw();
    error NotCommitted(uint256 dealId);
    error AlreadyCommitted(uint256 dealId);
    error SizeMismatch(uint256 dealId, uint256 datasetId);

    constructor(
        DatasetRegistry registry_,
        IERC20 token_,
        uint256 minStake_,
        uint256 slashAmount_,
        uint64 epochBlocks_
    ) {
        // The seed is the hash of the epoch's first block, readable for 256 blocks: the whole epoch.
        if (epochBlocks_ < 2 || epochBlocks_ > 256) revert InvalidParameters("epochBlocks must be in [2, 256]");
        if (slashAmount_ > minStake_) revert InvalidParameters("slash above minimum stake");
        registry = registry_;
        token = token_;
        minStake = minStake_;
        slashAmount = slashAmount_;
        epochBlocks = epochBlocks_;
        genesisBlock = block.number;
    }

    // ------------------------------------------------------------------ epochs ----

    function currentEpoch() public view returns (uint32) {
        return uint32((block.number - genesisBlock) / epochBlocks);
    }

    function epochStartBlock(uint32 epoch) public view returns (uint256) {
        return genesisBlock + uint256(epoch) * epochBlocks;
    }

    /// @notice The seed of `epoch`: the hash of its first block. Readable from the epoch's second
    /// block until 256 blocks later; 0 when not readable.
    /// @dev Randomness, stated honestly. The hash commits to the block's PREVRANDAO (mixHash),
    /// which its proposer cannot choose, but also to the body and header fields it does choose, so
    /// the producer of an epoch's first block can try many hashes and publish the one whose
    /// challenges suit it: it picks the best of its attempts for that one epoch. PREVRANDAO alone
    /// could only be withheld (one bit of bias), but the EVM exposes it for the current block only:
    /// using it would mean recording it in some transaction, and whoever chooses that block grinds
    /// it instead. Trusted: the producers of epoch-start blocks do not collude with providers that
    /// dropped data. A provider holding a fraction f of a share's leaves passes one epoch with
    /// probability f; grinding G hashes raises that to 1 - (1 - f)^G for the epochs whose first
    /// block it controls, and it must pass every epoch. On a single-sequencer L2 the sequencer is
    /// that producer for every epoch: the same trust is then placed in the sequencer.
    function epochSeed(uint32 epoch) public view returns (bytes32) {
        return blockhash(epochStartBlock(epoch));
    }

    /// @notice Leaf of share `shareIndex` that a proof for `epoch` must reveal now (needs the seed
    /// to be readable); the single definition provers call.
    /// @dev The seed draws `keccak(seed, dealId, shareIndex) % leafCount`, which is moved off the
    /// leaves revealed in the current round (by any deal over the same data) as `RevealedLeaves.pick`
    /// says: leaves fold into C = min(leafCount, 1,020) classes (leaf mod C) kept in at most 4 words,
    /// and the draw moves to the next class no proof of this round has revealed, in its own block of
    /// C leaves. So within a round (C proofs) no leaf is challenged twice and no proof copied from
    /// chain history answers; for shares of up to 1,020 leaves a round is the whole share. The
    /// round's last proof starts the next one. In later rounds of a larger share a challenge falls
    /// on an earlier revealed leaf with probability at most (rounds done) / floor(leafCount / C),
    /// about the share's revealed fraction (docs/replay.md). The answer depends on what is
    /// revealed, so it moves once the proof lands (and, rarely, when another deal over the same
    /// data reveals the leaf first in the same epoch: the proof then fails and is rebuilt).
    function challengeLeaf(uint256 dealId, uint16 shareIndex, uint32 epoch) public view returns (uint40) {
        Deal storage d = _deal(dealId);
        if (shareIndex >= d.n) revert InvalidShare(dealId, shareIndex);
        (uint40 leaf,) =
            _challenge(dealId, _revealed[d.commitmentRoot][shareIndex], shareIndex, _seed(epoch), d.leafCount);
        return leaf;
    }

    /// @notice A prover's round in one read: who provides the share, whether a proof of it is owed
    /// in `epoch` and not given yet, and if so the leaf it must answer (`challengeLeaf`; 0 otherwise).
    /// Reverts like `challengeLeaf` while the epoch's seed is not readable.
    function proofDuty(uint256 dealId, uint16 shareIndex, uint32 epoch)
        external
        view
        returns (address provider, bool owed, uint40 leaf)
    {
        Deal storage d = _deal(dealId);
        Share storage s = _share(dealId, d, shareIndex);
        provider = s.provider;
        owed = _due(s, epoch, d.endEpoch) && !_proven(s, epoch);
        if (owed) {
            (leaf,) = _challenge(dealId, _revealed[d.commitmentRoot][shareIndex], shareIndex, _seed(epoch), d.leafCount);
        }
    }

    /// @notice Has a proof revealed leaf `leafIndex` of this share (under any deal over the same data)?
    function isRevealed(uint256 dealId, uint16 shareIndex, uint40 leafIndex) external view returns (bool) {
        Deal storage d = _deal(dealId);
        if (shareIndex >= d.n) revert InvalidShare(dealId, shareIndex);
        return RevealedLeaves.isRevealed(_revealed[d.commitmentRoot][shareIndex], leafIndex, d.leafCount);
    }

    function _challenge(
        uint256 dealId,
        mapping(uint256 => uint256) storage revealed,
        uint16 shareIndex,
        bytes32 seed,
        uint40 leafCount
    ) private view returns (uint40 leaf, bool fresh) {
        uint256 draw; // keccak256(abi.encode(seed, dealId, shareIndex)), hashed in free memory
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, seed)
            mstore(add(p, 0x20), dealId)
            mstore(add(p, 0x40), and(shareIndex, 0xffff)) // a uint16 may carry dirty high bits here
            draw := keccak256(p, 0x60)
        }
        draw %= leafCount;
        (uint256 picked, bool full) = RevealedLeaves.pick(revealed, draw, leafCount);
        return (uint40(picked), full);
    }

    /// @dev The seed of `epoch`, or SeedNotYetAvailable.
    function _seed(uint32 epoch) private view returns (bytes32 seed) {
        seed = epochSeed(epoch);
        if (seed == bytes32(0)) revert SeedNotYetAvailable(epoch);
    }

    // --------------------------------------------------------------- operators ----

    function registerOperator(uint256 stake) external nonReentrant {
        Operator storage op = _operators[msg.sender];
        if (op.registered) revert AlreadyRegistered(msg.sender);
        if (stake < minStake) revert StakeTooLow(stake, minStake);
        op.registered = true;
        op.stake = stake;
        emit OperatorRegistered(msg.sender, stake);
        token.safeTransferFrom(msg.sender, address(this), stake);
    }

    function addStake(uint256 amount) external nonReentrant {
        Operator storage op = _operators[msg.sender];
        if (!op.registered) revert NotRegistered(msg.sender);
        op.stake += amount;
        emit StakeChanged(msg.sender, op.stake);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Take stake back. Above `minStake` at any time; below it (unstaking) only after
    /// `leave`, its exit delay, and once no accepted share is live (StakeLocked while one is).
    function withdrawStake(uint256 amount) external nonReentrant {
        Operator storage op = _operators[msg.sender];
        if (!op.registered) revert NotRegistered(msg.sender);
        if (amount > op.stake) revert StakeTooLow(op.stake, amount);
        if (op.stake - amount < minStake) {
            if (op.activeShares > 0) revert StakeLocked(msg.sender, op.activeShares);
            if (op.exitEpoch == 0 || currentEpoch() < op.exitEpoch) revert ExitNotReady(msg.sender, op.exitEpoch);
        }
        op.stake -= amount;
        emit StakeChanged(msg.sender, op.stake);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Stop taking new deals and shares, and start the exit delay. Shares already accepted
    /// must still be proven until their deal ends or their provider is replaced.
    function leave() external {
        Operator storage op = _operators[msg.sender];
        if (!op.registered) revert NotRegistered(msg.sender);
        if (op.exitEpoch != 0) revert OperatorIsLeaving(msg.sender, op.exitEpoch);
        uint32 exitEpoch = currentEpoch() + EXIT_DELAY_EPOCHS;
        op.exitEpoch = exitEpoch;
        emit OperatorLeaving(msg.sender, exitEpoch);
    }

    /// @notice Publish the node's announcement (a signed record, checked by readers, not here):
    /// the sender must be a registered operator with at least `minStake`, not leaving. The latest
    /// event of an operator replaces its earlier ones. Nothing is stored.
    function announce(bytes calldata record) external {
        _checkAvailable(msg.sender);
        if (record.length == 0 || record.length > MAX_ANNOUNCEMENT) {
            revert AnnouncementTooLong(record.length, MAX_ANNOUNCEMENT);
        }
        emit Announced(msg.sender, record);
    }

    /// @dev Can `operator` take on a share now: registered, staked, not leaving?
    function _checkAvailable(address operator) private view {
        Operator storage op = _operators[operator];
        if (!op.registered) revert NotRegistered(operator);
        if (op.stake < minStake) revert StakeTooLow(op.stake, minStake);
        if (op.exitEpoch != 0) revert OperatorIsLeaving(operator, op.exitEpoch);
    }

    function getOperator(address operator) external view returns (Operator memory) {
        return _operators[operator];
    }

    // ------------------------------------------------------------------- deals ----

    /// @notice Open a deal for one of your datasets: `providers[i]` stores share i for
    /// `durationEpochs` epochs starting next epoch, at `feePerShareEpoch` each; escrow is pulled now.
    function openDeal(uint256 datasetId, address[] calldata providers, uint32 durationEpochs, uint256 feePerShareEpoch)
        external
        nonReentrant
        returns (uint256 dealId)
    {
        DatasetRegistry.Dataset memory ds = registry.getDataset(datasetId);
        if (ds.owner != msg.sender) revert NotDatasetOwner(datasetId, msg.sender);
        if (providers.length != ds.n) revert WrongProviderCount(ds.n, providers.length);
        dealId = _open(ds.shareSize, ds.leafSize, ds.k, providers, durationEpochs, feePerShareEpoch);
        _commit(dealId, _deals[dealId], datasetId, ds.commitmentRoot);
    }

    /// @notice Open a deal before the data's commitment root is known (a streaming publish): its
    /// sizes, providers, duration and fee are fixed and the escrow is pulled now, but no share can
    /// be accepted (so nothing is proven or paid) until `commitDeal` names a registered dataset of
    /// the same owner and sizes. Nodes hold uploads for it pending, up to the share size, and
    /// activate them only against the committed root (docs/streaming-publish.md). Uncommitted, it
    /// ends like any deal: terminate, settle, and the whole escrow goes back to the owner.
    function openDraftDeal(
        uint64 shareSize,
        uint32 leafSize,
        uint16 k,
        address[] calldata providers,
        uint32 durationEpochs,
        uint256 feePerShareEpoch
    ) external nonReentrant returns (uint256 dealId) {
        dealId = _openDraft(shareSize, leafSize, k, providers, durationEpochs, feePerShareEpoch);
    }

    /// @notice `openDraftDeal` with the escrow's allowance granted in the same transaction by an
    /// EIP-2612 permit the sender signed for this market and exactly the escrow (one transaction
    /// instead of `approve` + `openDraftDeal`). The permit is tried, not required: one already
    /// submitted by someone else (front-run) leaves the allowance it granted, and the escrow is
    /// pulled from the sender only, so a permit signed by another account opens nothing at its cost.
    function openDraftDealWithPermit(
        uint64 shareSize,
        uint32 leafSize,
        uint16 k,
        address[] calldata providers,
        uint32 durationEpochs,
        uint256 feePerShareEpoch,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 dealId) {
        uint256 escrow = providers.length * durationEpochs * feePerShareEpoch;
        try IERC20Permit(address(token)).permit(msg.sender, address(this), escrow, deadline, v, r, s) {} catch {}
        dealId = _openDraft(shareSize, leafSize, k, providers, durationEpochs, feePerShareEpoch);
    }

    function _openDraft(
        uint64 shareSize,
        uint32 leafSize,
        uint16 k,
        address[] calldata providers,
        uint32 durationEpochs,
        uint256 feePerShareEpoch
    ) private returns (uint256 dealId) {
        if (shareSize == 0 || leafSize == 0 || k == 0 || k >= providers.length || providers.length > 256) {
            revert InvalidParameters("need sizes > 0 and 1 <= k < n <= 256");
        }
        dealId = _open(shareSize, leafSize, k, providers, durationEpochs, feePerShareEpoch);
        emit DealDrafted(dealId, msg.sender);
    }

    /// @notice Commit a draft deal to one of your registered datasets with the deal's sizes: its
    /// commitment root becomes the deal's, and shares can be accepted from now on.
    function commitDeal(uint256 dealId, uint256 datasetId) external {
        Deal storage d = _draftOf(dealId);
        DatasetRegistry.Dataset memory ds = registry.getDataset(datasetId);
        if (ds.owner != msg.sender) revert NotDatasetOwner(datasetId, msg.sender);
        _checkSizes(d, dealId, datasetId, ds.n, ds.k, ds.leafSize, ds.shareSize);
        _commit(dealId, d, datasetId, ds.commitmentRoot);
    }

    /// @notice Register a dataset (you become its owner, as with `DatasetRegistry.register`) and
    /// commit your draft deal to it, in one transaction: the checks of `commitDeal` hold.
    function registerAndCommit(
        uint256 dealId,
        DatasetRegistry.Registration calldata r,
        LicenseTerms calldata terms
    ) external returns (uint256 datasetId) {
        Deal storage d = _draftOf(dealId);
        // the dataset id is not known before it is registered: SizeMismatch names the next one
        _checkSizes(d, dealId, registry.datasetCount() + 1, r.n, r.k, r.leafSize, r.shareSize);
        datasetId = registry.registerFor(msg.sender, r, terms); // the trusted registry: no callback
        _commit(dealId, d, datasetId, r.commitmentRoot);
    }

    /// @dev A draft deal of the caller, not committed and not settled.
    function _draftOf(uint256 dealId) private view returns (Deal storage d) {
        d = _deal(dealId);
        if (d.owner != msg.sender) revert NotDealOwner(dealId, msg.sender);
        if (d.commitmentRoot != PENDING_ROOT) revert AlreadyCommitted(dealId);
        if (d.settled) revert DealOver(dealId);
    }

    function _checkSizes(
        Deal storage d,
        uint256 dealId,
        uint256 datasetId,
        uint16 n,
        uint16 k,
        uint32 leafSize,
        uint64 shareSize
    ) private view {
        if (leafSize == 0 || shareSize == 0) revert SizeMismatch(dealId, datasetId);
        uint40 leafCount = uint40((uint256(shareSize) + leafSize - 1) / leafSize);
        if (
            n != d.n || k != d.k || leafSize != d.leafSize || leafCount != d.leafCount
                || shareSize - uint256(leafCount - 1) * leafSize != d.lastLeafSize
        ) revert SizeMismatch(dealId, datasetId);
    }

    /// @notice What a node reads to check an order, in one call: the deal, the share and the
    /// dataset's manifest hash (zero while the deal is a draft).
    function orderView(uint256 dealId, uint16 shareIndex)
        external
        view
        returns (Deal memory d, Share memory s, bytes32 manifestHash)
    {
        Deal storage stored = _deal(dealId);
        s = _share(dealId, stored, shareIndex);
        d = stored;
        if (d.commitmentRoot != PENDING_ROOT) manifestHash = registry.getDataset(d.datasetId).manifestHash;
    }

    function _open(
        uint64 shareSize,
        uint32 leafSize,
        uint16 k,
        address[] calldata providers,
        uint32 durationEpochs,
        uint256 feePerShareEpoch
    ) private returns (uint256 dealId) {
        if (durationEpochs == 0) revert InvalidParameters("zero duration");
        uint256 nextDeal = dealCount + 1;
        for (uint256 i; i < providers.length; ++i) {
            address provider = providers[i];
            _checkAvailable(provider);
            // linear duplicate check: one transient mark per (deal, provider); the deal id is new
            // in every call, so marks left by an earlier call in the same transaction never match
            uint256 mark = (nextDeal << 160) | uint160(provider);
            bool seen;
            assembly ("memory-safe") {
                seen := tload(mark)
                tstore(mark, 1)
            }
            if (seen) revert DuplicateProvider(provider);
        }
        uint40 leafCount = uint40((uint256(shareSize) + leafSize - 1) / leafSize);
        uint32 start = currentEpoch() + 1;
        uint256 escrow = providers.length * durationEpochs * feePerShareEpoch;

        dealId = nextDeal;
        dealCount = dealId;
        _deals[dealId] = Deal({
            commitmentRoot: PENDING_ROOT,
            leafCount: leafCount,
            leafSize: leafSize,
            lastLeafSize: uint32(shareSize - uint256(leafCount - 1) * leafSize),
            n: uint16(providers.length),
            startEpoch: start,
            endEpoch: start + durationEpochs,
            settled: false,
            k: k,
            healthy: 0,
            owner: msg.sender,
            datasetId: 0,
            feePerShareEpoch: feePerShareEpoch,
            escrow: escrow,
            paid: 0
        });
        for (uint256 i; i < providers.length; ++i) {
            _shares[dealId][i].provider = providers[i];
        }
        if (escrow > 0) token.safeTransferFrom(msg.sender, address(this), escrow);
    }

    /// @dev Emits DealOpened (with the providers as they are now: a draft's may have been replaced).
    function _commit(uint256 dealId, Deal storage d, uint256 datasetId, bytes32 commitmentRoot) private {
        d.commitmentRoot = commitmentRoot;
        d.datasetId = datasetId;
        DatasetDeals storage dd = _datasetDeals[datasetId];
        (dd.previous, dd.latest) = (dd.latest, uint128(dealId));
        address[] memory providers = new address[](d.n);
        for (uint256 i; i < providers.length; ++i) {
            providers[i] = _shares[dealId][i].provider;
        }
        emit DealOpened(dealId, datasetId, d.owner, providers, d.startEpoch, d.endEpoch, d.feePerShareEpoch);
    }

    /// @notice The assigned provider takes on a share; it is challenged from the next epoch
    /// (or the deal's first epoch).
    function acceptShare(uint256 dealId, uint16 shareIndex) external {
        Deal storage d = _deal(dealId);
        Share storage s = _share(dealId, d, shareIndex);
        if (s.provider != msg.sender) revert NotProvider(dealId, shareIndex, msg.sender);
        if (s.activeFrom != 0) revert AlreadyAccepted(dealId, shareIndex);
        if (d.commitmentRoot == PENDING_ROOT) revert NotCommitted(dealId);
        uint32 next = currentEpoch() + 1;
        if (d.settled || next >= d.endEpoch) revert DealOver(dealId);
        _checkAvailable(msg.sender);
        Operator storage op = _operators[msg.sender];
        s.activeFrom = next > d.startEpoch ? next : d.startEpoch;
        op.activeShares += 1;
        d.healthy += 1;
        emit ShareAccepted(dealId, shareIndex, msg.sender, s.activeFrom);
    }

    /// @notice Storage proofs of the current epoch, one or many (all or nothing), in a packed
    /// layout parsed here instead of ABI-decoded (contracts/proofs.py writes it): the epoch (4 bytes)
    /// and the number of proofs (1 byte), then per proof the deal id (8 bytes), the share index
    /// (2 bytes), the challenged leaf (as long as the deal says that leaf is), the leaf's siblings up
    /// to the share root and the share root's siblings up to the commitment root, bottom-up, 32 bytes
    /// each and as many as the trees need (an odd last node moves up without one). The share root
    /// itself is not sent: it is what the leaf path computes.
    function proveStorage(bytes calldata proofs) external {
        uint32 epoch = currentEpoch();
        if (proofs.length < 5) revert MalformedProofs(proofs.length, 0);
        uint32 claimed = uint32(bytes4(proofs[:4]));
        if (claimed != epoch) revert WrongEpoch(claimed, epoch);
        uint256 count = uint8(proofs[4]);
        if (count == 0) revert MalformedProofs(proofs.length, 5);
        bytes32 seed = _seed(epoch);
        bytes memory shares = new bytes(count * 10);
        uint256 at;
        assembly ("memory-safe") {
            at := add(proofs.offset, 5)
        }
        for (uint256 i; i < count; ++i) {
            uint256 head;
            (at, head) = _provePacked(at, epoch, seed);
            assembly ("memory-safe") {
                let slot := add(add(shares, 0x20), mul(i, 10))
                mstore(slot, or(shl(176, head), and(mload(slot), sub(shl(176, 1), 1))))
            }
        }
        uint256 parsed;
        assembly ("memory-safe") {
            parsed := sub(at, proofs.offset)
        }
        if (parsed != proofs.length) revert MalformedProofs(proofs.length, parsed);
        emit StorageProofs(msg.sender, epoch, shares);
    }

    /// @dev One packed proof at calldata offset `at`: returns the offset after it and its head
    /// (dealId << 16 | shareIndex, its first 10 bytes). The deal's second slot and the share slot
    /// are each read once, raw, in the layouts `Deal` and `Share` declare (a change to either struct's
    /// members before `owner` / of `Share` must change these shifts: every proof test would fail).
    function _provePacked(uint256 at, uint32 epoch, bytes32 seed) private returns (uint256 next, uint256 head) {
        assembly ("memory-safe") {
            head := shr(176, calldataload(at))
        }
        Deal storage d = _deal(head >> 16);
        uint256 sizes; // leafCount 0-39, leafSize 40-71, lastLeafSize 72-103, n 104-119, endEpoch 152-183
        assembly ("memory-safe") {
            sizes := sload(add(d.slot, 1))
        }
        uint256 share = _provable(head, sizes, epoch);
        mapping(uint256 => uint256) storage revealed = _revealed[d.commitmentRoot][uint16(head)];
        (uint40 index, bool fresh) = _challenge(head >> 16, revealed, uint16(head), seed, uint40(sizes));
        next = _verifyPacked(d, sizes, at + 10, index, head, epoch);
        RevealedLeaves.reveal(revealed, index, uint40(sizes), fresh); // not challenged again this round
        _recordProof(head, d, share, epoch);
    }

    /// @dev The checks before the proof of `head` (dealId << 16 | shareIndex) in `epoch` is
    /// verified; returns the share slot as read.
    function _provable(uint256 head, uint256 sizes, uint32 epoch) private view returns (uint256 share) {
        uint256 dealId = head >> 16;
        uint16 shareIndex = uint16(head);
        if (shareIndex >= uint16(sizes >> 104)) revert InvalidShare(dealId, shareIndex);
        Share storage slot = _shares[dealId][shareIndex];
        assembly ("memory-safe") {
            share := sload(slot.slot)
        }
        if (address(uint160(share)) != msg.sender) revert NotProvider(dealId, shareIndex, msg.sender);
        uint32 activeFrom = uint32(share >> 160);
        bool faulty = uint8(share >> 240) != 0;
        if (activeFrom == 0 || faulty || epoch < activeFrom || epoch >= uint32(sizes >> 152)) {
            revert NotDue(dealId, shareIndex, epoch); // as `_due`
        }
        if (uint32(share >> 192) == epoch + 1) revert AlreadyProven(dealId, shareIndex, epoch);
    }

    /// @dev Leaf `index` at `at` (its length from the deal's sizes), its path to the share root,
    /// then the share root's path to the commitment root; returns the offset after them.
    function _verifyPacked(Deal storage d, uint256 sizes, uint256 at, uint256 index, uint256 head, uint32 epoch)
        private
        view
        returns (uint256 next)
    {
        uint256 leafCount = uint40(sizes);
        uint256 length = index == leafCount - 1 ? uint32(sizes >> 72) : uint32(sizes >> 40);
        bytes32 root;
        (root, next) = MerkleVerifier.computeRootAt(MerkleVerifier.leafHashAt(at, length), index, leafCount, at + length);
        (root, next) = MerkleVerifier.computeRootAt(MerkleVerifier.leafHash32(root), uint16(head), uint16(sizes >> 104), next);
        if (root != d.commitmentRoot) revert InvalidProof(head >> 16, uint16(head), epoch);
    }

    /// @dev Epoch `epoch` proven: lastProven, previousProven and unclaimed of the share slot
    /// (`share` as read) rewritten in one SSTORE. The slot: provider in bits 0-159, then
    /// activeFrom, lastProven, unclaimed, faulty, previousProven, as `Share` declares them.
    function _recordProof(uint256 head, Deal storage d, uint256 share, uint32 epoch) private {
        uint256 unclaimed = uint16(share >> 224);
        if (unclaimed == type(uint16).max) {
            // never reached by a provider that claims; claimed here rather than refusing a proof
            uint256 amount = unclaimed * d.feePerShareEpoch;
            unclaimed = 0;
            d.paid += amount;
            balances[msg.sender] += amount;
            emit FeesClaimed(head >> 16, uint16(head), msg.sender, amount);
        }
        bool previousProven = uint32(share >> 192) == epoch; // the epoch before this one
        share = (share & ((uint256(1) << 192) - 1)) | (uint256(epoch + 1) << 192) | ((unclaimed + 1) << 224)
            | (share & (uint256(0xff) << 240)) | (previousProven ? uint256(1) << 248 : 0);
        Share storage slot = _shares[head >> 16][uint16(head)];
        assembly ("memory-safe") {
            sstore(slot.slot, share)
        }
    }

    /// @notice Was the proof for `epoch` recorded? Exact for the current and the previous epoch
    /// (the only ones that can still be proven or reported); false for older epochs.
    function isProven(uint256 dealId, uint16 shareIndex, uint32 epoch) public view returns (bool) {
        Deal storage d = _deal(dealId);
        return _proven(_share(dealId, d, shareIndex), epoch);
    }

    function _proven(Share storage s, uint32 epoch) private view returns (bool) {
        uint32 last = s.lastProven;
        return last == epoch + 1 || (s.previousProven && last == epoch + 2);
    }

    /// @notice Was a proof owed for this share in `epoch` (by the current provider)?
    function isDue(uint256 dealId, uint16 shareIndex, uint32 epoch) external view returns (bool) {
        Deal storage d = _deal(dealId);
        return _due(_share(dealId, d, shareIndex), epoch, d.endEpoch);
    }

    function _due(Share memory s, uint32 epoch, uint32 endEpoch) private pure returns (bool) {
        return s.activeFrom != 0 && !s.faulty && epoch >= s.activeFrom && epoch < endEpoch;
    }

    /// @notice During the epoch after a proof was owed, anyone may report that it never came: the
    /// provider is slashed and the share marked faulty. Never possible for a proven epoch.
    function reportMissedProof(uint256 dealId, uint16 shareIndex, uint32 epoch) external {
        uint32 current = currentEpoch();
        if (epoch >= current) revert DeadlineNotPassed(epoch, current);
        if (epoch + 1 != current) revert ReportWindowClosed(epoch, current);
        Deal storage d = _deal(dealId);
        if (d.settled) revert AlreadySettled(dealId);
        Share storage s = _share(dealId, d, shareIndex);
        if (!_due(s, epoch, d.endEpoch)) revert NotDue(dealId, shareIndex, epoch);
        if (_proven(s, epoch)) revert AlreadyProven(dealId, shareIndex, epoch);

        s.faulty = true;
        d.healthy -= 1;
        Operator storage op = _operators[s.provider];
        op.activeShares -= 1;
        uint256 slashed = op.stake < slashAmount ? op.stake : slashAmount;
        op.stake -= slashed;
        uint256 reward = slashed / 2;
        // an owner reporting its own deal gets its half only: the reporter's half is burned, so
        // sabotaging one's own providers never pays the whole slash
        if (msg.sender == d.owner) burned += reward;
        else balances[msg.sender] += reward;
        balances[d.owner] += slashed - reward;
        emit ProofMissed(dealId, shareIndex, epoch, s.provider, slashed);
    }

    /// @notice Move the fees a share has earned to its provider's balance (anyone may call).
    function claimFees(uint256 dealId, uint16 shareIndex) external {
        Deal storage d = _deal(dealId);
        _claim(dealId, d, shareIndex, _share(dealId, d, shareIndex));
    }

    function _claim(uint256 dealId, Deal storage d, uint16 shareIndex, Share storage s) private {
        uint256 amount = uint256(s.unclaimed) * d.feePerShareEpoch;
        if (amount == 0) return;
        s.unclaimed = 0;
        d.paid += amount;
        balances[s.provider] += amount;
        emit FeesClaimed(dealId, shareIndex, s.provider, amount);
    }

    /// @notice The deal owner (or its repair agent acting with its key) moves a faulty, or never
    /// accepted, share to a new provider, which must then accept it. The share root is unchanged:
    /// a rebuilt share is byte-identical, and the leaves revealed so far stay revealed (they are
    /// still public). Fees the old provider earned stay its own.
    function replaceProvider(uint256 dealId, uint16 shareIndex, address newProvider) external {
        Deal storage d = _deal(dealId);
        if (d.owner != msg.sender) revert NotDealOwner(dealId, msg.sender);
        Share storage s = _share(dealId, d, shareIndex);
        if (!(s.faulty || s.activeFrom == 0)) revert ShareNotReplaceable(dealId, shareIndex);
        if (d.settled || currentEpoch() + 1 >= d.endEpoch) revert DealOver(dealId);
        _checkAvailable(newProvider);
        for (uint256 i; i < d.n; ++i) {
            if (_shares[dealId][i].provider == newProvider) revert DuplicateProvider(newProvider);
        }
        _claim(dealId, d, shareIndex, s);
        address old = s.provider;
        s.provider = newProvider;
        s.activeFrom = 0;
        s.lastProven = 0;
        s.previousProven = false;
        s.faulty = false;
        emit ProviderReplaced(dealId, shareIndex, old, newProvider);
    }

    /// @notice The owner ends the deal early (for example to delete the data): from the current
    /// epoch on nothing is owed, so providers may delete the shares at once (a proof already made
    /// for the current epoch is still paid; the previous epoch stays reportable during this one, as
    /// it was before). Settle from the next epoch on to get the unearned escrow back.
    function terminateDeal(uint256 dealId) external {
        Deal storage d = _deal(dealId);
        if (d.owner != msg.sender) revert NotDealOwner(dealId, msg.sender);
        if (d.settled) revert AlreadySettled(dealId);
        uint32 end = currentEpoch();
        if (end < d.startEpoch) end = d.startEpoch;
        if (end < d.endEpoch) d.endEpoch = end;
        emit DealTerminated(dealId, d.endEpoch);
    }

    /// @notice Once the report window of the deal's last epoch has closed (from epoch
    /// `endEpoch + 1`): fees earned go to providers, the unearned escrow back to the owner, and the
    /// providers' stake is freed. Reports and settlement never overlap, so a share is counted out
    /// of its operator's `activeShares` exactly once (by its report or by the settlement).
    function settleDeal(uint256 dealId) external {
        Deal storage d = _deal(dealId);
        if (d.settled) revert AlreadySettled(dealId);
        if (currentEpoch() <= d.endEpoch) revert DealNotOver(dealId, d.endEpoch);
        d.settled = true;
        d.healthy = 0;
        for (uint16 i; i < d.n; ++i) {
            Share storage s = _shares[dealId][i];
            _claim(dealId, d, i, s);
            if (s.activeFrom != 0 && !s.faulty) _operators[s.provider].activeShares -= 1;
        }
        uint256 refund = d.escrow - d.paid;
        balances[d.owner] += refund;
        emit DealSettled(dealId, refund);
    }

    /// @notice Pull everything owed to you: fees claimed, slashing rewards, refunds.
    function withdraw() external nonReentrant {
        uint256 amount = balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Can the dataset be served: does it have an open deal (not settled, its last epoch
    /// not passed) in which at least k shares are accepted by their provider and not faulty?
    /// O(1): the latest two deals of the dataset are checked (a renewal and the deal it renews).
    function isServable(uint256 datasetId) external view returns (bool) {
        DatasetDeals storage dd = _datasetDeals[datasetId];
        uint32 epoch = currentEpoch();
        return _servable(dd.latest, epoch) || _servable(dd.previous, epoch);
    }

    function _servable(uint256 dealId, uint32 epoch) private view returns (bool) {
        if (dealId == 0) return false;
        Deal storage d = _deals[dealId];
        return !d.settled && epoch < d.endEpoch && d.healthy >= d.k;
    }

    /// @notice Shares of the deal accepted by their provider and not faulty (0 once settled).
    function healthyShares(uint256 dealId) external view returns (uint16) {
        return _deal(dealId).healthy;
    }

    function getDeal(uint256 dealId) external view returns (Deal memory) {
        return _deal(dealId);
    }

    function getShare(uint256 dealId, uint16 shareIndex) external view returns (Share memory) {
        Deal storage d = _deal(dealId);
        return _share(dealId, d, shareIndex);
    }

    /// @notice Every share of the deal in index order: a deal's health in one read, not n.
    function getShares(uint256 dealId) external view returns (Share[] memory out) {
        Deal storage d = _deal(dealId);
        mapping(uint256 => Share) storage shares = _shares[dealId];
        out = new Share[](d.n);
        for (uint256 i; i < out.length; ++i) {
            out[i] = shares[i];
        }
    }

    /// @dev A deal exists iff its commitment root is set (registration refuses a zero root); slot 0
    /// is read by every proof anyway, so the check costs no extra cold read.
    function _deal(uint256 dealId) private view returns (Deal storage d) {
        d = _deals[dealId];
        if (d.commitmentRoot == bytes32(0)) revert UnknownDeal(dealId);
    }

    function _share(uint256 dealId, Deal storage d, uint256 shareIndex) private view returns (Share storage) {
        if (shareIndex >= d.n) revert InvalidShare(dealId, shareIndex);
        return _shares[dealId][shareIndex];
    }
}
