from __future__ import annotations

import json

import pytest

from evmlm.evm.disasm import BytecodeError, basic_blocks, disassemble, load_bytecode, split_metadata
from evmlm.evm.opcodes import OPCODES

from .conftest import load_fixture


def test_input_forms_agree() -> None:
    c = load_fixture("oz496_erc20_0826_opt200")
    hexcode = c["runtime_bytecode"]
    raw = bytes.fromhex(hexcode)
    assert load_bytecode(hexcode) == raw
    assert load_bytecode("0x" + hexcode.upper()) == raw
    assert load_bytecode(f"  0x{hexcode[:100]}\n{hexcode[100:]}  ") == raw
    assert load_bytecode(raw) == raw
    assert load_bytecode({"deployedBytecode": "0x" + hexcode}) == raw
    assert load_bytecode({"deployedBytecode": {"object": hexcode}}) == raw
    assert load_bytecode(json.dumps({"evm": {"deployedBytecode": {"object": hexcode}}})) == raw


@pytest.mark.parametrize(
    "bad, words",
    [
        ("", "empty"),
        ("0x", "empty"),
        ("0x60zz", "not hex"),
        ("0x600", "odd"),
        ('{"abi": []}', "deployedBytecode"),
        ("{not json", "JSON"),
        (b"", "empty"),
    ],
)
def test_bad_input_is_one_line_typed_error(bad: object, words: str) -> None:
    with pytest.raises(BytecodeError) as e:
        load_bytecode(bad, what="input.hex")  # type: ignore[arg-type]
    assert words in str(e.value) and "input.hex" in str(e.value) and "\n" not in str(e.value)


def test_library_placeholder_linked_to_zero() -> None:
    code = "73" + "__$" + "a" * 34 + "$__" + "00"
    assert load_bytecode(code) == bytes.fromhex("73" + "00" * 20 + "00")


def test_metadata_trailer_stripped_on_real_code() -> None:
    for name in ("oz496_erc20_0826_opt200", "weth9_0426_opt200", "univ2_pair_0516_opt200"):
        code = load_bytecode(load_fixture(name)["runtime_bytecode"])
        exe, meta = split_metadata(code)
        assert exe + meta == code
        assert meta and int.from_bytes(meta[-2:], "big") == len(meta) - 2
        assert b"solc" in meta or b"bzzr" in meta or b"ipfs" in meta
    assert split_metadata(b"\x60\x00\x56") == (b"\x60\x00\x56", b"")


def test_prague_opcodes_and_push_data() -> None:
    for byte, name in [
        (0x5F, "PUSH0"),
        (0x5E, "MCOPY"),
        (0x5C, "TLOAD"),
        (0x5D, "TSTORE"),
        (0x49, "BLOBHASH"),
        (0x4A, "BLOBBASEFEE"),
        (0x48, "BASEFEE"),
        (0x44, "PREVRANDAO"),
    ]:
        assert OPCODES[byte].name == name
    ins = disassemble(bytes.fromhex("5f6101025b0c61ff"))
    assert [(i.pc, i.name, i.arg) for i in ins] == [
        (0, "PUSH0", 0),
        (1, "PUSH2", 0x0102),
        (4, "JUMPDEST", None),
        (5, "INVALID", None),
        (6, "PUSH2", 0xFF00),
    ]
    assert ins[3].op.byte == 0x0C  # an unassigned byte is kept as INVALID


def test_basic_blocks_split_at_jumpdest_and_terminators() -> None:
    code = bytes.fromhex("6004565b600160025760006000fd5b00")
    blocks = basic_blocks(disassemble(code))
    assert sorted(blocks) == [0, 3, 9, 14]
    assert blocks[3].last.name == "JUMPI" and blocks[9].last.name == "REVERT"
