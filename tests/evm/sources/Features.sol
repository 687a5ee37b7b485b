// SPDX-License-Identifier: MIT
// Exercises each TAC recogniser: args, msg.sender, (nested) mappings, storage variables, events,
// require strings, custom errors, checked-arithmetic panics, external calls, receive/fallback,
// and an internal function shared by several callers.
pragma solidity ^0.8.0;

interface IToken { function transfer(address to, uint256 amount) external returns (bool); }

contract Features {
    error NotOwner(address caller);
    event Deposited(address indexed from, uint256 amount);
    event Moved(address indexed from, address indexed to, uint256 amount);

    address public owner;
    uint256 public total;
    mapping(address => uint256) public balances;
    mapping(address => mapping(address => uint256)) public allowances;
    uint256 public fallbackCalls;

    constructor() { owner = msg.sender; }

    receive() external payable { balances[msg.sender] += msg.value; emit Deposited(msg.sender, msg.value); }
    fallback() external payable { fallbackCalls += 1; }

    function _move(address from, address to, uint256 amount) internal {
        require(balances[from] >= amount, "Features: insufficient balance");
        balances[from] -= amount;
        balances[to] += amount;
        emit Moved(from, to, amount);
    }

    function move(address to, uint256 amount) external { _move(msg.sender, to, amount); }

    function moveFrom(address from, address to, uint256 amount) external {
        allowances[from][msg.sender] -= amount;
        _move(from, to, amount);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowances[msg.sender][spender] = amount;
        return true;
    }

    function add(uint256 a, uint256 b) external pure returns (uint256) { return a + b; }

    function sum(uint256[] calldata xs) external pure returns (uint256 s) {
        for (uint256 i = 0; i < xs.length; i++) { s += xs[i]; }
    }

    function sweep(IToken token, address to, uint256 amount) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        total += amount;
        require(token.transfer(to, amount), "Features: transfer failed");
    }
}
