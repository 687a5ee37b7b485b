"""The differential executor on runtime code (the unknown-bytecode mode): controls, undetermined."""

from __future__ import annotations

from pathlib import Path

from evmlm.decompile.verify import ONLY_EMPTY_REVERTS, compare_runtime

ROOT = Path(__file__).resolve().parents[2]
COUNTER = (ROOT / "tests" / "fixtures" / "evaluate" / "Counter.sol").read_text()
BUMP = "0xb20eb4c4"  # bump(uint256)


def _runtime(source: str, solcjs, name: str = "Counter") -> bytes:
    return bytes.fromhex(
        solcjs({"C.sol": source})["contracts"]["C.sol"][name]["evm"]["deployedBytecode"]["object"]
    )


def test_positive_control_original_runtime_is_the_same(solcjs) -> None:
    code = _runtime(COUNTER, solcjs)
    res = compare_runtime(code, code, BUMP, ["uint256"])
    assert res.same is True and res.n_calls == 2 * 35 and res.n_different == 0


def test_negative_control_changed_storage_write_differs(solcjs) -> None:
    code = _runtime(COUNTER, solcjs)
    changed = _runtime(
        COUNTER.replace("balances[msg.sender] += amount;", "balances[owner] += amount;"), solcjs
    )
    res = compare_runtime(code, changed, BUMP, ["uint256"])
    assert (
        res.same is False
        and res.n_different > 0
        and res.first_difference.startswith("storage slot")
    )


def test_a_function_that_only_reverts_with_empty_data_is_undetermined(solcjs) -> None:
    """The original reverts with empty data on every call: agreement proves nothing."""
    src = "pragma solidity ^0.8.20; contract G { uint256 x; function f(uint256 a) external { require(x > 0); x = a; } }"
    code = _runtime(src, solcjs, "G")
    other = _runtime(src.replace("x = a;", "x = a + 1;"), solcjs, "G")
    sel = "0xb3de648b"  # f(uint256)
    res = compare_runtime(code, other, sel, ["uint256"])
    assert res.same is None and ONLY_EMPTY_REVERTS in (res.first_difference or "")
    # no argument types (no signature): undetermined, not an error
    assert compare_runtime(code, code, sel, None).same is None
