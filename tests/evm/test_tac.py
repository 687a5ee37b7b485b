"""TAC: one printer, one parser, round-trip on every lifted function; SSA form."""

from __future__ import annotations

import re

import pytest

from evmlm.evm import tac
from evmlm.evm.tac import TacSyntaxError, parse_function, print_function, split_functions

from .conftest import lifted


def test_round_trip_every_function(fixture_name: str) -> None:
    for f in lifted(fixture_name).functions:
        parsed = parse_function(f.tac)
        assert print_function(parsed) == f.tac
        assert parse_function(print_function(parsed)) == parsed


def test_ssa_single_definition_and_defined_before_use(fixture_name: str) -> None:
    for f in lifted(fixture_name).functions:
        fn = parse_function(f.tac)
        defs = [s.lhs for b in fn.blocks for s in b.stmts if s.lhs]
        assert len(defs) == len(set(defs)), f"{f.name}: a variable is defined twice"
        defined = set(defs)
        for b in fn.blocks:
            for s in b.stmts:
                for name in re.findall(
                    r"\bv\d+\b", " ".join(tac.format_operand(a) for a in s.args)
                ):
                    assert name in defined, f"{f.name}: {name} used but never defined"


def test_phi_at_merges_has_one_operand_per_predecessor(fixture_name: str) -> None:
    seen = 0
    for f in lifted(fixture_name).functions:
        fn = parse_function(f.tac)
        for b in fn.blocks:
            for s in b.stmts:
                if s.op == "PHI":
                    seen += 1
                    assert len(b.prev) >= 2 or (b is fn.blocks[0])
                    assert len(s.args) == len(b.prev) + (b is fn.blocks[0])
    if fixture_name.startswith("weth9"):
        assert seen > 0  # transferFrom's `a && b` merges two values


def test_blocks_list_prev_and_succ_consistently(fixture_name: str) -> None:
    for f in lifted(fixture_name).functions:
        fn = parse_function(f.tac)
        labels = {b.label: b for b in fn.blocks}
        for b in fn.blocks:
            for s in b.succ:
                assert b.label in labels[s].prev
            for p in b.prev:
                assert b.label in labels[p].succ


def test_constants_inlined_and_header() -> None:
    f = lifted("oz496_erc20_0826_opt200").function("0xa9059cbb")
    head = f.tac.splitlines()[0]
    assert head == "function 0xa9059cbb transfer(address,uint256)"
    assert "PUSH" not in f.tac and "DUP" not in f.tac and "SWAP" not in f.tac
    assert re.search(r"JUMPI\(0x[0-9a-f]+, v\d+\)", f.tac)


def test_handwritten_text_parses_and_prints_back() -> None:
    text = (
        "function 0xa9059cbb transfer(address,uint256) payable view\n"
        "  block 0x1a4 prev=[0x0] succ=[0x1c2,0x1be_1]\n"
        "    v3 = PHI(v1, 0x20)\n"
        '    ERROR(v9, "a \\"quoted\\" reason # not a note")\n'
        "    v7 = SLOAD(_allowances[arg0][msg.sender])\n"
        "    v12 = CALL(v10, arg0, 0x0, v11, 0x44, v11, 0x20)  # callee 0xa9059cbb transfer(address,uint256)\n"
        "    v13 = arg1\n"
        "    JUMPI(0x1c2, v9)\n"
        "  block 0x1c2 prev=[] succ=[]\n"
        "    STOP()\n"
    )
    f = parse_function(text)
    assert f.flags == ("payable", "view") and f.signature == "transfer(address,uint256)"
    assert f.blocks[0].stmts[1].args[1] == tac.Str('a "quoted" reason # not a note')
    assert f.blocks[0].stmts[2].args[0] == tac.Index(
        tac.Index(tac.Var("_allowances"), tac.Var("arg0")), tac.Var("msg.sender")
    )
    assert f.blocks[0].stmts[3].note == "callee 0xa9059cbb transfer(address,uint256)"
    assert f.blocks[0].stmts[4] == tac.Stmt("v13", None, (tac.Var("arg1"),))
    assert print_function(f) == text
    assert split_functions(text + text) == [text, text]


@pytest.mark.parametrize(
    "text, line",
    [
        ("block 0x0\n", 1),
        ("function 0x1 f() pure\n", 1),
        ("function 0x1\n    STOP()\n", 2),
        ("function 0x1\n  block 0x0 prev=[] succ=[]\n    v1 = ADD(v0,\n", 3),
        ("function 0x1\n  block 0x0 prev=[] succ=[]\n    v1 = ADD(v0) v2\n", 3),
        ("function 0x1\n  block 0x0 prev=[] succ=[]\n    v1 = ADD(@)\n", 3),
        ("function 0x1\n  block zero\n", 2),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(TacSyntaxError, match=f"line {line}"):
        parse_function(text)
