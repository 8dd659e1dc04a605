// Hardhat is used only as a local JSON-RPC node for integration tests (`npx hardhat node`);
// contracts are compiled by build.js with the pinned solc, not by Hardhat.
module.exports = {
  solidity: "0.8.28",
  networks: {
    hardhat: { chainId: 31337, hardfork: "cancun", mining: { auto: true } },
  },
};
