from __future__ import annotations

from evmlm.dataset.filters import FILTERS, apply_filters, check, solidity_parses, whitespace_tokens

from .conftest import TAC, record

GOOD = "function transfer(address to, uint256 v) public returns (bool) { balances[to] += v; return true; }"


def test_good_record_passes():
    assert check(record(1, GOOD), 10, 1000) is None


def test_empty_tac_is_dropped():
    assert check(record(1, GOOD, tac=""), 10, 1000) == "tac_empty"
    assert (
        check(record(1, GOOD, tac="function 0xa9059cbb\n  block 0x0 prev=[] succ=[]"), 10, 1000)
        == "tac_empty"
    )


def test_interface_declaration_is_dropped():
    assert (
        check(
            record(1, "function transfer(address to, uint256 v) external returns (bool);"), 10, 1000
        )
        == "no_body"
    )
    # a getter has no body and is kept
    assert (
        check(record(1, "mapping(address => uint256) public balanceOf", kind="getter"), 10, 1000)
        is None
    )


def test_unparsable_solidity_is_dropped():
    assert solidity_parses(GOOD)
    assert not solidity_parses("function f() public { uint x = ; }")
    assert check(record(1, "function f() public { uint x = ; }"), 10, 1000) == "solidity_unparsable"


def test_token_range_counts_prompt_and_target():
    r = record(1, GOOD)
    n = whitespace_tokens(TAC) + whitespace_tokens(r["signature"]) + whitespace_tokens(GOOD)
    assert check(r, n, n) is None
    assert check(r, n + 1, n + 10) == "too_short"
    assert check(r, 1, n - 1) == "too_long"


def test_apply_filters_counts_each_filter():
    recs = [
        record(1, GOOD),
        record(2, GOOD, tac=""),
        record(3, "function f() external;"),
        record(4, "function f() public { ( }"),
        record(5, GOOD),
    ]
    kept, dropped = apply_filters(recs, 10, 1000)
    assert [r["id"] for r in kept] == ["00000001", "00000005"]
    assert set(dropped) == set(FILTERS)
    assert dropped == {
        "tac_empty": 1,
        "no_body": 1,
        "solidity_unparsable": 1,
        "too_short": 0,
        "too_long": 0,
    }
