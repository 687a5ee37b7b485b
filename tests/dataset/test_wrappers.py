"""Wrapper generation, compiled with the real solc-js."""

from __future__ import annotations

import time

import pytest

from evmlm.dataset.wrappers import LiftTimeout, _wall_clock_guard, plan_wrappers

DIAMOND = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IAddr { function provider() external view returns (address); }
interface IBase { function hook(uint256 x) external returns (uint256); }

abstract contract Mid is IBase {
    function hook(uint256 x) external virtual override returns (uint256);
}

abstract contract Other {
    function hook(uint256 x) external virtual returns (uint256);
}

abstract contract Client is IAddr, Mid, Other {
    address public immutable override provider;   // a public state variable implements IAddr
    enum Mode { Off, On }
    struct Cfg { uint64 a; Mode m; }

    constructor(address p, Mode m, string memory name_, uint256[] memory xs) { provider = p; }

    function ping() public view returns (address) { return provider; }
    function hook2(Cfg memory c) internal pure returns (uint64) { return c.a; }
    function _auth(address who) internal virtual;
    function hook(uint256 x) external virtual override(Mid, Other) returns (uint256);
}

library Codec {
    struct Pair { uint128 lo; uint128 hi; }
    function pack(Pair memory p) internal pure returns (uint256) { return (uint256(p.hi) << 128) | p.lo; }
    function low(uint256 w) internal pure returns (uint128) { return uint128(w); }
    function bump(Pair storage p) internal { p.lo += 1; }   // storage parameter: not wrappable
}
"""


def test_wrappers_compile_for_diamond_overrides_getters_and_library_structs():
    from evmlm.solc import compile_job, compile_sources

    result = compile_sources({"Diamond.sol": DIAMOND}, setting="opt200", version="0.8.26")
    plan = plan_wrappers(result)
    assert (
        plan is not None
        and plan.abstract == ["Client__EvmlmConcrete"]
        and list(plan.libraries) == ["Codec__EvmlmLibrary"]
    )
    text = plan.text
    # hook is declared by Client, Mid, Other and IBase; Client's declaration overrides the rest
    assert "function hook(uint256 p0) external override returns (uint256 r0) {}" in text
    assert "function provider(" not in text  # implemented by the public state variable
    assert (
        'constructor() Client(address(0), Mode(0), "", new uint256[](0)) {}' in text
    )  # default arguments
    assert "function _auth(address p0) internal override {}" in text
    assert (
        "function pack(Codec.Pair memory p0) external pure returns (uint256) { return Codec.pack(p0); }"
        in text
    )
    assert "bump" not in text
    compiled = compile_job(
        {**result.sources, plan.path: plan.text},
        [plan.path],
        setting=result.setting,
        version=result.version,
        remappings=result.remappings,
    )
    names = {a.name: a for a in compiled.contracts if a.source_path == plan.path}
    assert set(names) == {"Client__EvmlmConcrete", "Codec__EvmlmLibrary"}
    assert {"ping()", "provider()", "hook(uint256)"} <= set(
        names["Client__EvmlmConcrete"].method_identifiers
    )
    assert set(names["Codec__EvmlmLibrary"].method_identifiers) == {
        "pack((uint128,uint128))",
        "low(uint256)",
    }


def test_old_compilers_are_not_wrapped(old_opt):
    assert plan_wrappers(old_opt) is None


def test_wall_clock_guard_interrupts_python_code():
    t = time.perf_counter()
    with pytest.raises(LiftTimeout):
        with _wall_clock_guard(0.3):
            while True:
                pass
    assert time.perf_counter() - t < 5


def test_library_wrappers_pair_when_the_original_ast_ids_came_from_a_batch():
    """A batched solc run numbers AST nodes across all its files; the wrapper's own run does not.

    Regression: libraries were looked up by the batch run's AST id in the wrapper run's AST.
    """
    from evmlm.config import LiftConfig
    from evmlm.dataset.wrappers import wrap_result
    from evmlm.solc.compiler import JobSpec, compile_batch

    first = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\ncontract First { uint256 public x; function set(uint256 v) external { x = v; } }\n"
    jobs = [
        JobSpec({"A.sol": first}, ("A.sol",)),
        JobSpec({"Diamond.sol": DIAMOND}, ("Diamond.sol",)),
    ]
    batch = compile_batch(jobs, setting="opt200", version="0.8.26", use_cache=False)
    diamond = batch[1]
    assert not isinstance(diamond, Exception)
    records, counts, _ = wrap_result(diamond, {}, LiftConfig())
    library_records = [r for r in records if r["contract"].endswith("Codec__EvmlmLibrary")]
    assert {r["true_signature"] for r in library_records} == {
        "pack((uint128,uint128))",
        "low(uint256)",
    }
    assert {r["solidity"].split("(")[0] for r in library_records} == {
        "function pack",
        "function low",
    }
    assert all(r["defining_contract"] == "Diamond.sol:Codec" for r in library_records)
