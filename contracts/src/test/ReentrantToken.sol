// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A malicious ERC-20 for tests: on every transfer out of `victim` it calls `victim`
/// again with `payload` (for example refund(licenseId) or withdraw()), trying to be paid twice.
/// It records whether the nested call succeeded; the nested call's revert is swallowed so the
/// outer call shows whether the victim's own state stayed consistent.
contract ReentrantToken is ERC20 {
    address public victim;
    bytes public payload;
    bool public attacking;
    bool public reentered;
    bool public reentrySucceeded;

    constructor() ERC20("reentrant", "BAD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address victim_, bytes calldata payload_) external {
        victim = victim_;
        payload = payload_;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from == victim && victim != address(0) && !attacking) {
            attacking = true;
            reentered = true;
            (bool ok,) = victim.call(payload);
            reentrySucceeded = ok;
            attacking = false;
        }
    }
}
