"""evmlm: language models of EVM smart contracts (bytecode -> TAC -> model -> Solidity)."""

__version__ = "0.1.0"
