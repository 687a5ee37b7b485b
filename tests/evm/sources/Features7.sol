// SPDX-License-Identifier: MIT
// A 0.6 contract with receive, fallback, a modifier and SafeMath-style checks (no checked arithmetic).
pragma solidity ^0.6.12;

contract Features7 {
    event Paid(address indexed who, uint256 amount);
    address public owner;
    mapping(address => uint256) public paid;
    uint256 public pings;

    constructor() public { owner = msg.sender; }
    modifier onlyOwner() { require(msg.sender == owner, "Features7: not owner"); _; }

    receive() external payable { paid[msg.sender] += msg.value; emit Paid(msg.sender, msg.value); }
    fallback() external { pings += 1; }

    function add(uint256 a, uint256 b) public pure returns (uint256) {
        uint256 c = a + b;
        require(c >= a, "Features7: overflow");
        return c;
    }

    function setOwner(address o) external onlyOwner { owner = o; }
    function ping() external onlyOwner returns (uint256) { pings = add(pings, 1); return pings; }
}
