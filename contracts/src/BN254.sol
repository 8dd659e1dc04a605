// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice An affine point of the BN254 (alt_bn128) group G1; (0, 0) stands for the point at infinity.
struct G1Point {
    uint256 x;
    uint256 y;
}

/// @title BN254
/// @notice The G1 arithmetic the verifiable key delivery needs, on the EIP-196 precompiles.
/// G1 has prime order (cofactor 1): every point on the curve other than infinity generates the
/// whole group, so there are no small-subgroup points to worry about once `isOnCurve` holds.
library BN254 {
    /// @dev Base field modulus p and group order n of alt_bn128 (EIP-196).
    uint256 internal constant P = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    uint256 internal constant N = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice True for a finite point of y^2 = x^3 + 3 with coordinates reduced mod p.
    function isOnCurve(G1Point calldata q) internal pure returns (bool) {
        uint256 x = q.x;
        uint256 y = q.y;
        if (x >= P || y >= P || (x == 0 && y == 0)) return false;
        return mulmod(y, y, P) == addmod(mulmod(mulmod(x, x, P), x, P), 3, P);
    }

    /// @notice s * q with the ecMul precompile (0x07). `ok` is false when q is not a curve point.
    function mul(uint256 qx, uint256 qy, uint256 s) internal view returns (bool ok, uint256 rx, uint256 ry) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, qx)
            mstore(add(m, 0x20), qy)
            mstore(add(m, 0x40), s)
            ok := staticcall(gas(), 0x07, m, 0x60, m, 0x40)
            if ok {
                rx := mload(m)
                ry := mload(add(m, 0x20))
            }
        }
    }

    /// @notice s * G for the generator G = (1, 2).
    function mulGenerator(uint256 s) internal view returns (bool ok, uint256 rx, uint256 ry) {
        return mul(1, 2, s);
    }
}
