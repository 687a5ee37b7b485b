"""Labels from the reference Solidity (evmlm.dataset.labels): classes and element types."""

from __future__ import annotations

import pytest

from evmlm.dataset.labels import (
    CLASS_INDEX,
    ELEMENT_TYPES,
    SEMANTIC_CLASSES,
    decode_classes,
    label_fields,
    label_function,
    token_class,
)

CONTEXT = """mapping(address => uint256) private _balances;
uint256 public constant FEE = 3;
event Paid(address indexed to, uint256 amount);
error TooLate(uint256 at);"""

FN = """function pay(address to, uint256 amount) external payable returns (bool ok) {
        // pays
        if (block.timestamp > 10) revert TooLate(block.timestamp);
        require(msg.sender != to, "self");
        uint256 fee = amount * FEE;
        _balances[to] += amount - fee;
        (ok, ) = to.call{value: msg.value}("");
        for (uint256 i; i < 2; i++) { unchecked { fee++; } }
        emit Paid(to, amount);
        IERC20(to).transfer(msg.sender, fee);
    }"""


def classes_of(text: str, classes: tuple[int, ...], word: str, nth: int = 0) -> str:
    at = -1
    for _ in range(nth + 1):
        at = text.index(word, at + 1)
    return SEMANTIC_CLASSES[classes[at]]


def test_semantic_classes_of_a_function() -> None:
    lab = label_function(FN, CONTEXT)
    assert len(lab.classes) == len(FN)
    expect = {
        "function": "kw_function",
        "pay": "function_name",
        "address": "elementary_type",
        "payable": "kw_mutability",
        "returns": "kw_returns",
        "// pays": "comment",
        "block": "builtin_object",
        "timestamp": "builtin_member",
        "TooLate": "error_name",
        "require": "builtin_function",
        '"self"': "string_literal",
        "FEE": "constant",
        "_balances": "state_var",
        "+=": "op_assignment",
        "emit": "kw_emit",
        "Paid": "event_name",
        "IERC20": "type_cast",
        "unchecked": "kw_unchecked",
        "for": "kw_loop",
        "==": None,
    }
    for word, cls in expect.items():
        if cls is not None:
            assert classes_of(FN, lab.classes, word) == cls, word
    assert classes_of(FN, lab.classes, "to", 1) == "parameter"  # `msg.sender != to`
    assert classes_of(FN, lab.classes, "fee =") == "local_var_decl"
    assert classes_of(FN, lab.classes, "call") == "low_level_call"
    assert classes_of(FN, lab.classes, "transfer") == "external_call"
    assert classes_of(FN, lab.classes, "10") == "number_literal"
    assert FN[0:8] == "function" and lab.classes[8] == CLASS_INDEX["whitespace"]


def test_element_types_of_a_function() -> None:
    lab = label_function(FN, CONTEXT)
    expected = {
        "payable",
        "returns_value",
        "block_timestamp",
        "custom_error",
        "revert",
        "require",
        "error_message",
        "msg_sender",
        "msg_value",
        "storage_write",
        "storage_read",
        "mapping_access",
        "low_level_call",
        "value_transfer",
        "loop",
        "unchecked_block",
        "event_emit",
        "external_call",
        "conditional",
    }
    assert set(lab.elements) == expected
    assert set(lab.elements) <= set(ELEMENT_TYPES)


def test_negative_control_a_view_function_has_no_write() -> None:
    fn = "function get(address a) public view returns (uint256) { return _balances[a]; }"
    lab = label_function(fn, CONTEXT)
    assert set(lab.elements) == {"view_or_pure", "returns_value", "storage_read", "mapping_access"}
    assert "storage_write" not in lab.elements


def test_record_fields_round_trip_and_token_alignment() -> None:
    rec = {"solidity": FN, "contract_context": CONTEXT, "kind": "function"}
    f = label_fields(rec)
    assert len(f["solidity_classes"]) == len(FN)
    ids = decode_classes(f["solidity_classes"])
    assert ids == list(label_function(FN, CONTEXT).classes)
    # a byte-level BPE token " pay(" starting with a space gets the class of "pay"
    start = FN.index(" pay")
    assert token_class(ids, FN, start, start + 5) == CLASS_INDEX["function_name"]
    assert token_class(ids, FN, 8, 9) == CLASS_INDEX["whitespace"]
    with pytest.raises(ValueError):
        decode_classes("\x01")


def test_elements_include_the_reached_code_but_not_its_header() -> None:
    """transfer's own text only calls _transfer; its bytecode writes and emits (positive);
    _transfer's view/returns header is not transfer's (negative)."""
    fn = "function transfer(address to, uint256 v) external { _transfer(msg.sender, to, v); }"
    callee = (
        "function _transfer(address f, address t, uint256 v) internal returns (bool) {"
        " _balances[t] += v; emit Paid(t, v); return true; }"
    )
    own = label_fields({"solidity": fn, "contract_context": CONTEXT})
    assert own["elements"] == "internal_call msg_sender"
    rec = {"solidity": fn, "contract_context": CONTEXT, "reached": [[callee, []]]}
    got = label_fields(rec)
    assert got["elements"] == (
        "event_emit internal_call mapping_access msg_sender storage_read storage_write"
    )
    assert "returns_value" not in got["elements"]
    assert got["solidity_classes"] == own["solidity_classes"]  # classes: own text only


def test_library_calls_the_ast_names_are_internal_not_external() -> None:
    """``a.max(b)`` through ``using for`` and ``Math.min`` compile to jumps, ``token.f()`` to a
    CALL: with the AST's offsets the first two are internal calls (positive); without them the
    text alone calls all three external (the control)."""
    fn = (
        "function f(IPing token, uint256 a, uint256 b) external returns (uint256)"
        " { token.ping(); return Math.min(a.max(b), b); }"
    )
    calls = [fn.encode().index(b"max("), fn.encode().index(b"min(")]
    lab = label_function(fn, "", "function", calls)
    cls = {name: SEMANTIC_CLASSES[lab.classes[fn.index(name)]] for name in ("max", "min", "ping")}
    assert cls == {"max": "internal_call", "min": "internal_call", "ping": "external_call"}
    assert SEMANTIC_CLASSES[lab.classes[fn.index("Math")]] == "user_type"
    assert "storage_read" not in lab.elements  # Math is a library, not a state variable
    text_only = label_function(fn, "")
    assert SEMANTIC_CLASSES[text_only.classes[fn.index("max")]] == "external_call"
    assert {"external_call", "internal_call"} <= set(lab.elements)


def test_unparsable_text_never_raises() -> None:
    lab = label_function("function (((( {", "")
    assert len(lab.classes) == len("function (((( {")
