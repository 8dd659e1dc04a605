// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {G1Point} from "../BN254.sol";
import {DataPools} from "../DataPools.sol";
import {DatasetRegistry} from "../DatasetRegistry.sol";
import {LicenseTerms} from "../Types.sol";

/// @notice Benchmark helper: fills a pool with many contributions in few transactions (bench/gas_pools.py).
/// One instance curates (createPool, acceptRange); another registers datasets and contributes them
/// (fill), so the curator never accepts itself. Every call is the ordinary DataPools/DatasetRegistry call.
contract PoolFiller {
    uint256 private _nonce;

    function createPool(
        DataPools pools,
        LicenseTerms calldata terms,
        uint256 price,
        uint16 feeBps,
        address token,
        G1Point calldata key
    ) external returns (uint256) {
        return pools.createPool(terms, price, feeBps, "bench", token, address(0), key);
    }

    function fill(
        DataPools pools,
        DatasetRegistry registry,
        uint256 poolId,
        uint256 count,
        LicenseTerms calldata terms,
        address token,
        G1Point calldata seal
    ) external {
        for (uint256 i = 0; i < count; i++) {
            bytes32 h = keccak256(abi.encode(address(this), ++_nonce));
            DatasetRegistry.Registration memory r = DatasetRegistry.Registration({
                manifestHash: h,
                commitmentRoot: h,
                keyCommitment: h,
                keySalt: h,
                plaintextSize: 1 << 20,
                shareSize: 1 << 19,
                leafSize: 1024,
                k: 2,
                n: 4,
                price: 1,
                paymentToken: token,
                keyAgent: address(0)
            });
            uint256 datasetId = registry.register(r, terms);
            pools.contribute(poolId, datasetId, seal, h);
        }
    }

    function acceptRange(DataPools pools, uint256 first, uint256 count) external {
        for (uint256 i = 0; i < count; i++) {
            pools.accept(first + i, 0);
        }
    }
}
