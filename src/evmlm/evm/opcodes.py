"""The EVM instruction set through Prague: mnemonic, stack inputs and outputs per opcode byte.

Source: the Ethereum yellow paper, Appendix H (instruction set), with the later additions by
EIP: SHL/SHR/SAR (EIP-145), CREATE2 (EIP-1014), EXTCODEHASH (EIP-1052), CHAINID/SELFBALANCE
(EIP-1344/1884), BASEFEE (EIP-3198), PUSH0 (EIP-3855), TLOAD/TSTORE (EIP-1153), MCOPY
(EIP-5656), BLOBHASH (EIP-4844), BLOBBASEFEE (EIP-7516). PREVRANDAO (EIP-4399) keeps
DIFFICULTY's byte 0x44. Bytes not listed are INVALID (they halt execution).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class OpInfo:
    """One opcode: ``pops``/``pushes`` are stack items; ``push_bytes`` is the immediate size
    (PUSHn); ``is_dup``/``is_swap``: DUP1-16 (0x80-0x8F) / SWAP1-16 (0x90-0x9F), stored because
    the CFG walk and SSA construction test them for every instruction."""

    byte: int
    name: str
    pops: int
    pushes: int
    push_bytes: int = 0
    is_dup: bool = field(init=False)
    is_swap: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_dup", 0x80 <= self.byte <= 0x8F)
        object.__setattr__(self, "is_swap", 0x90 <= self.byte <= 0x9F)


_TABLE: list[tuple[int, str, int, int]] = [
    (0x00, "STOP", 0, 0),
    (0x01, "ADD", 2, 1),
    (0x02, "MUL", 2, 1),
    (0x03, "SUB", 2, 1),
    (0x04, "DIV", 2, 1),
    (0x05, "SDIV", 2, 1),
    (0x06, "MOD", 2, 1),
    (0x07, "SMOD", 2, 1),
    (0x08, "ADDMOD", 3, 1),
    (0x09, "MULMOD", 3, 1),
    (0x0A, "EXP", 2, 1),
    (0x0B, "SIGNEXTEND", 2, 1),
    (0x10, "LT", 2, 1),
    (0x11, "GT", 2, 1),
    (0x12, "SLT", 2, 1),
    (0x13, "SGT", 2, 1),
    (0x14, "EQ", 2, 1),
    (0x15, "ISZERO", 1, 1),
    (0x16, "AND", 2, 1),
    (0x17, "OR", 2, 1),
    (0x18, "XOR", 2, 1),
    (0x19, "NOT", 1, 1),
    (0x1A, "BYTE", 2, 1),
    (0x1B, "SHL", 2, 1),
    (0x1C, "SHR", 2, 1),
    (0x1D, "SAR", 2, 1),
    (0x20, "KECCAK256", 2, 1),
    (0x30, "ADDRESS", 0, 1),
    (0x31, "BALANCE", 1, 1),
    (0x32, "ORIGIN", 0, 1),
    (0x33, "CALLER", 0, 1),
    (0x34, "CALLVALUE", 0, 1),
    (0x35, "CALLDATALOAD", 1, 1),
    (0x36, "CALLDATASIZE", 0, 1),
    (0x37, "CALLDATACOPY", 3, 0),
    (0x38, "CODESIZE", 0, 1),
    (0x39, "CODECOPY", 3, 0),
    (0x3A, "GASPRICE", 0, 1),
    (0x3B, "EXTCODESIZE", 1, 1),
    (0x3C, "EXTCODECOPY", 4, 0),
    (0x3D, "RETURNDATASIZE", 0, 1),
    (0x3E, "RETURNDATACOPY", 3, 0),
    (0x3F, "EXTCODEHASH", 1, 1),
    (0x40, "BLOCKHASH", 1, 1),
    (0x41, "COINBASE", 0, 1),
    (0x42, "TIMESTAMP", 0, 1),
    (0x43, "NUMBER", 0, 1),
    (0x44, "PREVRANDAO", 0, 1),
    (0x45, "GASLIMIT", 0, 1),
    (0x46, "CHAINID", 0, 1),
    (0x47, "SELFBALANCE", 0, 1),
    (0x48, "BASEFEE", 0, 1),
    (0x49, "BLOBHASH", 1, 1),
    (0x4A, "BLOBBASEFEE", 0, 1),
    (0x50, "POP", 1, 0),
    (0x51, "MLOAD", 1, 1),
    (0x52, "MSTORE", 2, 0),
    (0x53, "MSTORE8", 2, 0),
    (0x54, "SLOAD", 1, 1),
    (0x55, "SSTORE", 2, 0),
    (0x56, "JUMP", 1, 0),
    (0x57, "JUMPI", 2, 0),
    (0x58, "PC", 0, 1),
    (0x59, "MSIZE", 0, 1),
    (0x5A, "GAS", 0, 1),
    (0x5B, "JUMPDEST", 0, 0),
    (0x5C, "TLOAD", 1, 1),
    (0x5D, "TSTORE", 2, 0),
    (0x5E, "MCOPY", 3, 0),
    (0x5F, "PUSH0", 0, 1),
    (0xF0, "CREATE", 3, 1),
    (0xF1, "CALL", 7, 1),
    (0xF2, "CALLCODE", 7, 1),
    (0xF3, "RETURN", 2, 0),
    (0xF4, "DELEGATECALL", 6, 1),
    (0xF5, "CREATE2", 4, 1),
    (0xFA, "STATICCALL", 6, 1),
    (0xFD, "REVERT", 2, 0),
    (0xFE, "INVALID", 0, 0),
    (0xFF, "SELFDESTRUCT", 1, 0),
]

OPCODES: dict[int, OpInfo] = {b: OpInfo(b, n, i, o) for b, n, i, o in _TABLE}
for _n in range(1, 33):
    OPCODES[0x5F + _n] = OpInfo(0x5F + _n, f"PUSH{_n}", 0, 1, _n)
for _n in range(1, 17):
    OPCODES[0x7F + _n] = OpInfo(0x7F + _n, f"DUP{_n}", _n, _n + 1)
    OPCODES[0x8F + _n] = OpInfo(0x8F + _n, f"SWAP{_n}", _n + 1, _n + 1)
for _n in range(5):
    OPCODES[0xA0 + _n] = OpInfo(0xA0 + _n, f"LOG{_n}", 2 + _n, 0)

INVALID = OPCODES[0xFE]
BY_NAME: dict[str, OpInfo] = {o.name: o for o in OPCODES.values()}

#: Instructions that end a basic block (control leaves the block or execution halts).
TERMINATORS = frozenset({"STOP", "JUMP", "JUMPI", "RETURN", "REVERT", "INVALID", "SELFDESTRUCT"})
#: Instructions that halt execution of the current call frame.
HALTS = frozenset({"STOP", "RETURN", "REVERT", "INVALID", "SELFDESTRUCT"})
#: Instructions that change state; a function without any is view-like.
STATE_CHANGING = frozenset(
    {
        "SSTORE",
        "TSTORE",
        "LOG0",
        "LOG1",
        "LOG2",
        "LOG3",
        "LOG4",
        "CREATE",
        "CREATE2",
        "CALL",
        "CALLCODE",
        "DELEGATECALL",
        "SELFDESTRUCT",
    }
)


def op_info(byte: int) -> OpInfo:
    """The :class:`OpInfo` of an opcode byte; unassigned bytes give an INVALID of that byte."""
    info = OPCODES.get(byte)
    if info is None:
        return OpInfo(byte, "INVALID", 0, 0)
    return info
