"""Splicing and differential execution on a real contract compiled with solc-js."""

from __future__ import annotations

import pytest

from evmlm.decompile.verify import ADDRESSES
from evmlm.decompile.verify import compare_deployed as compare_behaviour
from evmlm.evaluate.behaviour import splice_function
from evmlm.evaluate.errors import SpliceError
from evmlm.evm.abi import call_inputs, random_value

PATH = "Counter.sol"
BUMP_SELECTOR = "0xb20eb4c4"


def _creation(source: str, solcjs) -> tuple[str, list]:
    c = solcjs({PATH: source})["contracts"][PATH]["Counter"]
    return c["evm"]["bytecode"]["object"], c["abi"]


def _bump_range(source: str) -> tuple[int, int]:
    data = source.encode()
    start = data.index(b"function bump")
    end = data.index(b"function double")
    end = data.rindex(b"}", start, end) + 1
    return start, end - start


def test_splice_replaces_exact_byte_range() -> None:
    src = "contract C { /* é */ function f() public {} }"
    start = src.encode().index(b"function")
    length = len(b"function f() public {}")
    assert (
        splice_function(src, start, length, "function g() public {}")
        == "contract C { /* é */ function g() public {} }"
    )
    with pytest.raises(SpliceError):
        splice_function(src, start, 10_000, "")
    with pytest.raises(SpliceError):
        splice_function(src, src.encode().index("é".encode()) + 1, 1, "")  # inside the 2-byte é


def test_call_inputs_has_edges_and_32_random() -> None:
    inputs = call_inputs(["uint256", "address", "bool"], n_random=32, addresses=ADDRESSES)
    assert len(inputs) == 35
    assert inputs[0][0] == 0 and inputs[2][0] == 2**256 - 1
    assert call_inputs(["uint8[2]"], n_random=1, seed=3, addresses=ADDRESSES) == call_inputs(
        ["uint8[2]"], n_random=1, seed=3, addresses=ADDRESSES
    )


def test_random_values_respect_bit_widths() -> None:
    """uint8 / int8 / uint96 values stay in range and encode (was: 317-727 for uint8)."""
    import random

    from eth_abi import encode

    rng = random.Random(0)
    for t, lo, hi in (
        ("uint8", 0, 255),
        ("int8", -128, 127),
        ("uint96", 0, 2**96 - 1),
        ("int256", -(2**255), 2**255 - 1),
    ):
        values = [random_value(t, rng, ADDRESSES) for _ in range(500)]
        assert all(lo <= v <= hi for v in values), t
        assert len(set(values)) > 20, t  # not constant
        encode([t] * len(values), values)
    tuples = call_inputs(["uint8[]", "(uint16,int24)"], n_random=200, seed=1, addresses=ADDRESSES)
    encode(["uint8[]", "(uint16,int24)"], [list(a) for a in tuples][0])
    for args in tuples:
        encode(["uint8[]", "(uint16,int24)"], list(args))


def test_identical_function_behaves_the_same(counter_source: str, solcjs) -> None:
    code, abi = _creation(counter_source, solcjs)
    start, length = _bump_range(counter_source)
    same_text = counter_source.encode()[start : start + length].decode()
    spliced, _ = _creation(splice_function(counter_source, start, length, same_text), solcjs)
    res = compare_behaviour(code, spliced, abi, BUMP_SELECTOR)
    assert res.same is True and res.n_calls == 2 * 35 and res.n_different == 0


def test_changed_storage_write_does_not_behave_the_same(counter_source: str, solcjs) -> None:
    code, abi = _creation(counter_source, solcjs)
    start, length = _bump_range(counter_source)
    text = counter_source.encode()[start : start + length].decode()
    changed = text.replace("balances[msg.sender] += amount;", "balances[owner] += amount;")
    assert changed != text
    spliced, _ = _creation(splice_function(counter_source, start, length, changed), solcjs)
    res = compare_behaviour(code, spliced, abi, BUMP_SELECTOR)
    assert res.same is False
    assert res.first_difference is not None and "storage slot" in res.first_difference
    # the deployer is the owner: only the stranger's successful calls differ
    assert 0 < res.n_different < res.n_calls


def test_changed_event_and_guard_are_differences(counter_source: str, solcjs) -> None:
    code, abi = _creation(counter_source, solcjs)
    start, length = _bump_range(counter_source)
    text = counter_source.encode()[start : start + length].decode()
    for changed, what in (
        (
            text.replace(
                "emit Bumped(msg.sender, amount);", "emit Bumped(msg.sender, amount + 1);"
            ),
            "logs",
        ),
        (text.replace("amount < 1000", "amount < 100"), "success"),
    ):
        spliced, _ = _creation(splice_function(counter_source, start, length, changed), solcjs)
        res = compare_behaviour(code, spliced, abi, BUMP_SELECTOR)
        assert res.same is False and what in (res.first_difference or "")


def test_unknown_selector_is_undetermined(counter_source: str, solcjs) -> None:
    code, abi = _creation(counter_source, solcjs)
    res = compare_behaviour(code, code, abi, "0xdeadbeef")
    assert res.same is None and "not in the contract ABI" in (res.first_difference or "")


def test_recompile_through_evmlm_solc(counter_source: str) -> None:
    from evmlm.evaluate.behaviour import recompile
    from evmlm.solc import compile_sources

    result = compile_sources({PATH: counter_source}, setting="opt200", version="0.8.26")
    start, length = _bump_range(counter_source)
    text = counter_source.encode()[start : start + length].decode()
    ok = recompile(
        result,
        PATH,
        "Counter",
        start,
        length,
        text.replace("balances[msg.sender]", "balances[owner]"),
    )
    assert ok.ok and ok.error is None and ok.creation_bytecode != ok.original_creation_bytecode
    res = compare_behaviour(
        ok.original_creation_bytecode, ok.creation_bytecode, ok.abi, BUMP_SELECTOR
    )
    assert res.same is False
    bad = recompile(
        result,
        PATH,
        "Counter",
        start,
        length,
        text.replace("count += amount;", "counter += amount;"),
    )
    assert (
        not bad.ok
        and "Undeclared identifier" in (bad.error or "")
        and bad.creation_bytecode is None
    )
    with pytest.raises(SpliceError):
        recompile(result, "Other.sol", "Counter", start, length, text)


def test_inherited_function_is_spliced_into_the_base_file() -> None:
    from evmlm.evaluate.behaviour import recompile
    from evmlm.solc import compile_sources

    base = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\ncontract Base {\n    uint256 public x;\n    function set(uint256 v) public virtual { x = v; }\n}\n"
    child = '// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\nimport "./Base.sol";\ncontract Child is Base {}\n'
    result = compile_sources(
        {"Base.sol": base, "Child.sol": child}, setting="opt200", version="0.8.26"
    )
    fn = "function set(uint256 v) public virtual { x = v; }"
    start = base.encode().index(fn.encode())
    rc = recompile(
        result, "Base.sol", "Child.sol:Child", start, len(fn), fn.replace("x = v;", "x = v + 1;")
    )
    assert rc.ok, rc.error
    sel = result.contract("Child", "Child.sol").method_identifiers["set(uint256)"]
    res = compare_behaviour(rc.original_creation_bytecode, rc.creation_bytecode, rc.abi, sel)
    assert res.same is False and "storage slot 0x0" in (res.first_difference or "")
    same = recompile(result, "Base.sol", "Child.sol:Child", start, len(fn), fn)
    assert (
        compare_behaviour(
            same.original_creation_bytecode, same.creation_bytecode, same.abi, sel
        ).same
        is True
    )


def test_abstract_contract_is_checked_through_its_generated_wrapper() -> None:
    from evmlm.evaluate.behaviour import deployed_contract, recompile
    from evmlm.solc import compile_sources

    base = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\nabstract contract Base {\n    uint256 public x;\n    function set(uint256 v) public { x = v; }\n    function hook() internal virtual;\n}\n"
    wrap = '// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\nimport "../Base.sol";\ncontract Base__EvmlmConcrete is Base { function hook() internal override {} }\n'
    result = compile_sources(
        {"Base.sol": base, "w/Wrap.sol": wrap}, setting="opt200", version="0.8.26"
    )
    assert deployed_contract(result, "Base.sol:Base").name == "Base__EvmlmConcrete"
    fn = "function set(uint256 v) public { x = v; }"
    start = base.encode().index(fn.encode())
    rc = recompile(
        result,
        "Base.sol",
        "Base.sol:Base",
        start,
        len(fn),
        fn.replace("x = v;", "x = v * 2;"),
        selector="0x60fe47b1",
    )
    assert (
        rc.ok
        and compare_behaviour(
            rc.original_creation_bytecode, rc.creation_bytecode, rc.abi, "0x60fe47b1"
        ).same
        is False
    )
    with pytest.raises(SpliceError):
        deployed_contract(result, "Base.sol:Nope", "0xdeadbeef")


def test_constructor_arguments_are_searched_until_the_original_deploys(solcjs) -> None:
    src = '// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\ncontract Gate {\n    uint256 public n;\n    constructor(uint256 n_) { require(n_ > 5, "small"); n = n_; }\n    function add(uint256 x) external returns (uint256) { n += x % 7; return n; }\n}\n'
    c = solcjs({"Gate.sol": src})["contracts"]["Gate.sol"]["Gate"]
    code = c["evm"]["bytecode"]["object"]
    res = compare_behaviour(
        code, code, c["abi"], "0x" + c["evm"]["methodIdentifiers"]["add(uint256)"]
    )
    assert res.same is True and res.n_calls == 70


def test_recompile_drops_the_natspec_of_the_replaced_function() -> None:
    """The doc comment's @param names the original parameter; a decompiled text that names it
    otherwise must still compile (solc: DocstringParsingError otherwise)."""
    from evmlm.evaluate.behaviour import recompile
    from evmlm.solc import compile_sources

    src = (
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\ncontract D {\n    uint256 public x;\n"
        "    /// @notice sets x\n    /// @param value the new x\n    function set(uint256 value) external { x = value; }\n}\n"
    )
    res = compile_sources({"D.sol": src}, setting="opt200", version="0.8.26")
    start = src.encode().index(b"function set")
    length = len(b"function set(uint256 value) external { x = value; }")
    rc = recompile(
        res,
        "D.sol",
        "D",
        start,
        length,
        "function set(uint256 arg0) external { x = arg0; }",
        selector="0x60fe47b1",
    )
    assert rc.ok, rc.error
    from evmlm.decompile.verify import compare_deployed

    assert (
        compare_deployed(
            rc.original_creation_bytecode, rc.creation_bytecode, rc.abi, "0x60fe47b1"
        ).same
        is True
    )


def test_natspec_dropped_only_right_before_the_function() -> None:
    """A ``///`` comment followed by a blank line far above the function is not the
    function's NatSpec: only a comment that ends right where the function starts is dropped
    (a regex anchored at any line end cut the file from the first such comment: ParserError)."""
    from evmlm.evaluate.behaviour import _without_natspec

    src = (
        "contract D {\n    /// @dev the first\n\n    uint256 a;\n    // plain comment\n"
        "    function f() public {}\n}\n"
    )
    start = src.index("function f")
    spliced = src[:start] + "function f() public { a = 1; }" + src[start + 26 :]
    assert _without_natspec(src, start, spliced) == spliced
    doc = src.replace("    // plain comment\n", "    /// @notice f\n")
    start = doc.index("function f")
    spliced = doc[:start] + "function f() public { a = 1; }" + doc[start + 26 :]
    assert _without_natspec(doc, start, spliced) == spliced.replace("    /// @notice f\n    ", "")
