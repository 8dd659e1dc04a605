// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @notice A plain ERC-20 for local networks and tests: anyone may mint (a faucet). Never deploy
/// it where tokens have value. EIP-2612 permits (`StorageMarket.openDraftDealWithPermit`: no
/// separate `approve` transaction).
contract TestToken is ERC20, ERC20Permit {
    constructor() ERC20("datasov test token", "DSVT") ERC20Permit("datasov test token") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
