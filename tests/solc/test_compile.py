"""Real compiles with the installed solc-js versions (warm node workers)."""

from __future__ import annotations

import time

import pytest
from eth_utils import keccak

from evmlm.solc import CompileError, UnsupportedSettingError, compile_sources
from evmlm.solc.compiler import cache_path

COUNTER = """// SPDX-License-Identifier: MIT
pragma solidity {pragma};

contract Counter {{
    uint256 public count;
    event Bumped(uint256 by);

    function bump(uint256 by) public {{
        count = count + by;
        emit Bumped(by);
    }}
}}
"""


@pytest.mark.parametrize(
    ("pragma", "major"),
    [
        ("^0.4.24", "0.4."),
        ("^0.5.0", "0.5."),
        ("^0.6.0", "0.6."),
        ("^0.7.0", "0.7."),
        ("^0.8.0", "0.8."),
    ],
)
def test_compile_one_small_contract_per_major_version(pragma, major):
    r = compile_sources({"Counter.sol": COUNTER.format(pragma=pragma)}, setting="noopt")
    assert r.version.startswith(major)
    c = r.contract("Counter")
    assert c.method_identifiers == {
        sig: keccak(text=sig)[:4].hex() for sig in ("bump(uint256)", "count()")
    }
    assert c.runtime_bytecode and all(ch in "0123456789abcdef" for ch in c.runtime_bytecode)
    assert len(c.creation_bytecode) > len(c.runtime_bytecode)
    assert c.source_map.count(";") > 10
    assert {e["name"] for e in c.abi if e["type"] == "function"} == {"bump", "count"}
    assert r.asts["Counter.sol"]["nodeType"] in ("SourceUnit",) or "name" in r.asts["Counter.sol"]
    if major != "0.4.":
        assert c.storage_layout is not None and c.storage_layout["storage"][0]["label"] == "count"
    if major == "0.8.":
        assert c.function_debug_data  # internal function entry points (solc >= 0.8.2)


def test_optimizer_and_via_ir_change_the_code():
    src = {"Counter.sol": COUNTER.format(pragma="^0.8.13")}
    codes = {
        s: compile_sources(src, setting=s).contract("Counter").runtime_bytecode
        for s in ("noopt", "opt200", "ir200")
    }
    assert len(set(codes.values())) == 3
    assert len(codes["opt200"]) < len(codes["noopt"])


def test_via_ir_is_refused_before_0_8_13():
    with pytest.raises(UnsupportedSettingError, match="0.8.13"):
        compile_sources({"Counter.sol": COUNTER.format(pragma="^0.7.0")}, setting="ir200")


def test_explicit_version_and_evm_version():
    r = compile_sources(
        {"Counter.sol": COUNTER.format(pragma="^0.8.0")}, setting="opt200@paris", version="0.8.20"
    )
    assert r.version == "0.8.20" and r.setting.evm_version == "paris"
    assert (
        "5f" not in r.contract("Counter").runtime_bytecode[:8]
    )  # no PUSH0 prologue before shanghai


def test_solc_error_names_the_file_and_message():
    bad = {
        "Broken.sol": "pragma solidity ^0.8.0;\ncontract Broken { function f() public { undefinedThing(); } }\n"
    }
    with pytest.raises(CompileError) as ei:
        compile_sources(bad)
    msg = str(ei.value)
    assert msg.startswith("Broken.sol:") and "undefinedThing" in msg and "\n" not in msg
    assert ei.value.reason == "DeclarationError"


def test_missing_import_is_a_clear_error():
    src = {"A.sol": 'pragma solidity ^0.8.0;\nimport "./Nowhere.sol";\ncontract A {}\n'}
    with pytest.raises(CompileError, match="Nowhere.sol") as ei:
        compile_sources(src)
    assert ei.value.reason == "missing import"


def test_local_imports_and_relative_paths():
    src = {
        "contracts/Token.sol": 'pragma solidity ^0.8.0;\nimport "./lib/Math.sol";\ncontract Token { function add(uint a, uint b) external pure returns (uint) { return Math.add(a, b); } }\n',
        "contracts/lib/Math.sol": "pragma solidity >=0.8.0;\nlibrary Math { function add(uint a, uint b) internal pure returns (uint) { return a + b; } }\n",
    }
    r = compile_sources(src)
    assert {c.name for c in r.contracts} == {"Token", "Math"}
    assert set(r.asts) == set(src)


def test_imports_from_the_bundled_corpus_and_cache_hit():
    src = {
        "MyToken.sol": 'pragma solidity ^0.8.20;\nimport "@openzeppelin/contracts/token/ERC20/ERC20.sol";\n'
        'contract MyToken is ERC20 { constructor() ERC20("My", "MY") {} }\n'
    }
    t0 = time.perf_counter()
    r1 = compile_sources(src)
    cold = time.perf_counter() - t0
    assert (
        "@openzeppelin/contracts@5.7.0/token/ERC20/ERC20.sol" in r1.sources
    )  # a dependency sits under its versioned prefix
    assert r1.remappings == ["@openzeppelin/contracts/=@openzeppelin/contracts@5.7.0/"]
    assert r1.contract("MyToken").method_identifiers["transfer(address,uint256)"] == "a9059cbb"
    assert cache_path(r1.key).is_file()
    t0 = time.perf_counter()
    r2 = compile_sources(src)
    warm = time.perf_counter() - t0
    assert (
        r2.key == r1.key
        and r2.contract("MyToken").runtime_bytecode == r1.contract("MyToken").runtime_bytecode
    )
    assert warm < cold  # served from the cache, no compiler call


def test_a_result_compiles_again_from_its_own_sources():
    src = {
        "MyToken.sol": 'pragma solidity ^0.8.20;\nimport "@openzeppelin/contracts/token/ERC20/ERC20.sol";\n'
        'contract MyToken is ERC20 { constructor() ERC20("My", "MY") {} }\n'
    }
    r1 = compile_sources(src, setting="noopt")
    r2 = compile_sources(r1.sources, setting="noopt", remappings=r1.remappings, version=r1.version)
    assert r2.contract("MyToken").runtime_bytecode == r1.contract("MyToken").runtime_bytecode


def test_batch_isolates_a_failing_file_and_matches_single_compiles():
    from evmlm.solc.compiler import JobSpec, compile_batch, compile_job

    lib = "pragma solidity ^0.8.0;\nlibrary L { function id(uint x) internal pure returns (uint) { return x; } }\n"
    a = 'pragma solidity ^0.8.0;\nimport "L.sol";\ncontract A { function f(uint x) external pure returns (uint) { return L.id(x); } }\n'
    b = 'pragma solidity ^0.8.0;\nimport "L.sol";\ncontract B { function g() external { missingFn(); } }\n'
    c = "pragma solidity ^0.8.0;\ncontract C { uint public y; }\n"
    jobs = [
        JobSpec({"A.sol": a, "L.sol": lib}, ("A.sol",)),
        JobSpec({"B.sol": b, "L.sol": lib}, ("B.sol",)),
        JobSpec({"C.sol": c}, ("C.sol",)),
    ]
    ra, rb, rc = compile_batch(jobs, setting="opt200", version="0.8.26")
    assert (
        isinstance(rb, CompileError)
        and rb.reason == "DeclarationError"
        and rb.args[0].startswith("B.sol:3:")
    )
    assert (
        {x.name for x in ra.contracts} == {"A"}
        and set(ra.sources) == {"A.sol", "L.sol"}
        and set(ra.asts) == {"A.sol", "L.sol"}
    )
    assert {x.name for x in rc.contracts} == {"C"}
    alone = compile_job(
        {"A.sol": a, "L.sol": lib}, ["A.sol"], setting="opt200", version="0.8.26", use_cache=False
    )
    assert (
        alone.key == ra.key
        and alone.contract("A").runtime_bytecode == ra.contract("A").runtime_bytecode
    )


def test_undeclared_import_picks_a_version_compatible_with_the_pragma():
    src = {
        "Old.sol": 'pragma solidity ^0.6.0;\nimport "@openzeppelin/contracts/token/ERC20/ERC20.sol";\n'
        'contract Old is ERC20 { constructor() public ERC20("Old", "OLD") {} }\n'
    }
    r = compile_sources(src, setting="noopt")
    assert r.version.startswith("0.6.")
    assert any(
        p.startswith("@openzeppelin/contracts@3.4.2/") for p in r.sources
    )  # OZ 3.x is the newest for 0.6
