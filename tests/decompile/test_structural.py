"""The structural decompiler, checked by compiling and executing its output.

Each well-known function (OpenZeppelin ERC-20 (the corpus's newest, 5.7.0) ``transfer`` with solc 0.8.26, legacy and
via-IR; Uniswap V2 ``UniswapV2Pair.swap`` with solc 0.5.16; a WETH9-style contract with solc
0.4.26) is compiled by the real solc, lifted, drafted, spliced into its own source file at
the function's byte range, recompiled with the same compiler and setting and executed in
pyrevm against the original (edge and random calldata, two callers): the draft must behave
the same. The draft's text is also kept as a snapshot (``tests/fixtures/decompile/structural``;
``EVMLM_UPDATE_SNAPSHOTS=1`` rewrites them) so that changes to the output are reviewed.
The negative control: the same draft with one storage write changed must differ.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from evmlm.evaluate.behaviour import compare_behaviour, deployed_contract, recompile
from evmlm.evm import lift_contract
from evmlm.structural import (
    DraftFunction,
    draft_contract,
    draft_function,
    header_specifiers,
    splice_scope,
)

SNAPSHOTS = Path(__file__).resolve().parents[1] / "fixtures" / "decompile" / "structural"

OZ_TOKEN = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
import "@openzeppelin/contracts/token/ERC20/ERC20.sol";
contract Token is ERC20 {
    constructor() ERC20("Token", "TOK") { _mint(msg.sender, 1000); }
}
"""
V2_CORE = (
    Path(__file__).resolve().parents[2]
    / "vendor"
    / "corpora"
    / "@uniswap"
    / "v2-core@1.0.1"
    / "contracts"
)
# A WETH9-style wrapped-ether contract written for this test (solc 0.4 syntax).
WETH_0426 = """pragma solidity ^0.4.26;
contract Wrapped {
    string public name = "Wrapped Ether";
    uint8 public decimals = 18;
    event Deposit(address indexed dst, uint wad);
    event Withdrawal(address indexed src, uint wad);
    event Transfer(address indexed src, address indexed dst, uint wad);
    mapping (address => uint) public balanceOf;
    mapping (address => mapping (address => uint)) public allowance;
    function deposit() public payable {
        balanceOf[msg.sender] += msg.value;
        emit Deposit(msg.sender, msg.value);
    }
    function withdraw(uint wad) public {
        require(balanceOf[msg.sender] >= wad);
        balanceOf[msg.sender] -= wad;
        msg.sender.transfer(wad);
        emit Withdrawal(msg.sender, wad);
    }
    function transferFrom(address src, address dst, uint wad) public returns (bool) {
        require(balanceOf[src] >= wad);
        if (src != msg.sender && allowance[src][msg.sender] != uint(-1)) {
            require(allowance[src][msg.sender] >= wad);
            allowance[src][msg.sender] -= wad;
        }
        balanceOf[src] -= wad;
        balanceOf[dst] += wad;
        emit Transfer(src, dst, wad);
        return true;
    }
}
"""


def _path(result: Any, suffix: str) -> str:
    """The job's path of a file (corpus imports carry their package version: ``pkg@1.2.3/…``)."""
    return next(
        p
        for p in result.sources
        if p == suffix
        or p.endswith("/" + suffix.split("/", 2)[-1])
        and p.startswith(suffix.split("/")[0])
    )


def _function_range(result: Any, path: str, contract: str, name: str) -> tuple[int, int]:
    for node in result.asts[path]["nodes"]:
        if node.get("nodeType") == "ContractDefinition" and node["name"] == contract:
            for f in node["nodes"]:
                if (
                    f.get("nodeType") == "FunctionDefinition"
                    and f.get("name") == name
                    and f.get("implemented", f.get("body"))
                ):
                    start, length, _ = (int(x) for x in f["src"].split(":"))
                    return start, length
    raise AssertionError(f"{path}:{contract}.{name} not found")


def _draft_and_check(
    sources: dict[str, str],
    setting: str,
    version: str,
    deployed: str,
    fn_path: str,
    fn_contract: str,
    fn_name: str,
    signature: str,
    snapshot: str | None,
) -> tuple[DraftFunction, Any]:
    from evmlm.solc import compile_sources

    result = compile_sources(sources, setting=setting, version=version)
    dpath, dname = deployed.rsplit(":", 1)
    art = deployed_contract(result, f"{_path(result, dpath)}:{dname}")
    lifted = lift_contract(art.runtime_bytecode, abi=art.abi, storage_layout=art.storage_layout)
    fn = next(f for f in lifted.functions if f.signature == signature)
    fn_path = _path(result, fn_path)
    if ":" in deployed and deployed.rsplit(":", 1)[0] not in result.sources:
        deployed = f"{_path(result, deployed.rsplit(':', 1)[0])}:{deployed.rsplit(':', 1)[1]}"
    start, length = _function_range(result, fn_path, fn_contract, fn_name)
    original = result.sources[fn_path].encode()[start : start + length].decode()
    draft = draft_function(
        lifted,
        fn,
        abi=art.abi,
        storage_layout=art.storage_layout,
        solc_version=result.version,
        specifiers=header_specifiers(original, result.version),
        scope=splice_scope(result.asts, fn_path, start),
        runtime_bytecode=art.runtime_bytecode,
    )
    assert draft.error is None
    if snapshot is not None:
        snap = SNAPSHOTS / f"{snapshot}.sol"
        if os.environ.get("EVMLM_UPDATE_SNAPSHOTS") or not snap.exists():
            snap.write_text(draft.text)
        assert draft.text == snap.read_text(), (
            f"structural output of {snapshot} changed; review and set EVMLM_UPDATE_SNAPSHOTS=1"
        )
    selector = fn.selector or ""
    behaviour = _behaviour_of(result, deployed, fn_path, start, length, selector, draft.text)
    return draft, (result, deployed, fn_path, start, length, fn.selector, behaviour)


def _behaviour_of(
    result: Any, deployed: str, path: str, start: int, length: int, selector: str, text: str
) -> Any:
    """``text`` spliced in place of the function at ``start:length`` of ``path``, recompiled
    (it must compile) and compared with the original on ``selector``."""
    rc = recompile(result, path, deployed, start, length, text, selector=selector)
    assert rc.ok, rc.error
    return compare_behaviour(
        rc.original_creation_bytecode or "", rc.creation_bytecode or "", rc.abi, selector
    )


@pytest.mark.parametrize("setting", ["opt200", "ir200"])
def test_erc20_transfer_behaves_the_same(setting: str) -> None:
    draft, (*_, behaviour) = _draft_and_check(
        {"Token.sol": OZ_TOKEN},
        setting,
        "0.8.26",
        "Token.sol:Token",
        "@openzeppelin/contracts/token/ERC20/ERC20.sol",
        "ERC20",
        "transfer",
        "transfer(address,uint256)",
        f"oz570_erc20_0826_{setting}.transfer",
    )
    assert behaviour.same is True, behaviour.first_difference
    assert behaviour.n_calls == 70
    assert draft.structured
    # mostly Solidity: the guards, the balance reads and writes are statements, not assembly
    assert draft.n_assembly_statements < draft.n_statements * 0.6
    assert "_balances[" in draft.text and "sstore" not in draft.text
    assert "revert ERC20InsufficientBalance(" in draft.text or "require(" in draft.text
    # the ABI decoder's calldata size check is the recompiled header's own, not the body's
    assert "msg.data.length" not in draft.text


def test_changed_storage_write_is_detected() -> None:
    """Negative control: the draft with its balance write to the recipient changed differs."""

    draft, (result, deployed, path, start, length, selector, same) = _draft_and_check(
        {"Token.sol": OZ_TOKEN},
        "opt200",
        "0.8.26",
        "Token.sol:Token",
        "@openzeppelin/contracts/token/ERC20/ERC20.sol",
        "ERC20",
        "transfer",
        "transfer(address,uint256)",
        None,
    )
    assert same.same is True
    changed, n = re.subn(r"(_balances\[to\] = \()", r"\g<1>1 + ", draft.text)
    assert n >= 1, draft.text
    res = _behaviour_of(result, deployed, path, start, length, selector, changed)
    assert res.same is False and "storage slot" in (res.first_difference or "")


@pytest.mark.slow
def test_uniswap_v2_pair_swap_behaves_the_same() -> None:
    if not V2_CORE.is_dir():
        pytest.skip(f"{V2_CORE}: the bundled corpus is not fetched (make corpora)")
    sources = {f"contracts/{p.relative_to(V2_CORE)}": p.read_text() for p in V2_CORE.rglob("*.sol")}
    draft, (*_, behaviour) = _draft_and_check(
        sources,
        "opt200",
        "0.5.16",
        "contracts/UniswapV2Pair.sol:UniswapV2Pair",
        "contracts/UniswapV2Pair.sol",
        "UniswapV2Pair",
        "swap",
        "swap(uint256,uint256,address,bytes)",
        "univ2_pair_0516_opt200.swap",
    )
    assert behaviour.same is True, behaviour.first_difference
    assert "unchecked" not in draft.text  # solc 0.5 has no unchecked blocks; arithmetic wraps


@pytest.mark.parametrize(
    "fn_name,signature",
    [
        ("withdraw", "withdraw(uint256)"),
        ("transferFrom", "transferFrom(address,address,uint256)"),
        ("deposit", "deposit()"),
    ],
)
def test_solc_0426_contract_behaves_the_same(fn_name: str, signature: str) -> None:
    draft, (*_, behaviour) = _draft_and_check(
        {"Wrapped.sol": WETH_0426},
        "opt200",
        "0.4.26",
        "Wrapped.sol:Wrapped",
        "Wrapped.sol",
        "Wrapped",
        fn_name,
        signature,
        f"wrapped_0426_opt200.{fn_name}",
    )
    assert behaviour.same is True, behaviour.first_difference
    assert "calldata" not in draft.text.split("{")[0]


def test_draft_contract_compiles_as_one_file(solcjs) -> None:
    """draft_contract: one file with stor_<slot> variables, every function of the ABI."""
    out = solcjs({"Wrapped.sol": WETH_0426}, module="solc0426")["contracts"]["Wrapped.sol"][
        "Wrapped"
    ]
    lifted = lift_contract(out["evm"]["deployedBytecode"]["object"], abi=out["abi"])
    dc = draft_contract(
        lifted,
        abi=out["abi"],
        solc_version="0.4.26",
        runtime_bytecode=out["evm"]["deployedBytecode"]["object"],
    )
    assert set(dc.functions) >= {"0xd0e30db0", "0x2e1a7d4d", "0x23b872dd"}
    assert (
        "stor_3" in dc.source
    )  # the balanceOf mapping at slot 2 and allowance at 3 are declared in slot order
    compiled = solcjs({"Decompiled.sol": dc.source}, module="solc0426")["contracts"][
        "Decompiled.sol"
    ]["Decompiled"]
    assert compiled["evm"]["deployedBytecode"]["object"]


LOOPS = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
contract Loops {
    uint256[] public items;
    mapping(uint256 => uint256) public hits;
    function sum(uint256 n) public pure returns (uint256 s) {
        for (uint256 i = 0; i < n && i < 40; i++) {
            if (i % 3 == 0) continue;
            s += i * i;
        }
    }
    function find(uint256 x) public returns (uint256) {
        uint256 i = 0;
        while (true) {
            if (i >= 20) break;
            if ((x >> i) & 1 == 1) { hits[i] += 1; return i; }
            i++;
        }
        return 99;
    }
}
"""


@pytest.mark.parametrize("fn_name,signature", [("sum", "sum(uint256)"), ("find", "find(uint256)")])
@pytest.mark.parametrize("fallback", [False, True])
def test_loops_structured_and_state_machine(
    fn_name: str, signature: str, fallback: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loops become ``while (true)`` with ``continue``/``break``; with the structurer turned off
    the state-machine fallback must behave the same too."""
    import evmlm.structural as st

    if fallback:

        def refuse(self: Any) -> list:
            raise st._Unstructured("forced by the test")

        monkeypatch.setattr(st._Structurer, "run", refuse)
    draft, (*_, behaviour) = _draft_and_check(
        {"Loops.sol": LOOPS},
        "opt200",
        "0.8.26",
        "Loops.sol:Loops",
        "Loops.sol",
        "Loops",
        fn_name,
        signature,
        None,
    )
    assert behaviour.same is True, behaviour.first_difference
    assert draft.structured is not fallback
    assert ("__block" in draft.text) is fallback
    if not fallback:
        assert "while (true)" in draft.text


def test_header_helpers_read_the_original_header() -> None:
    from evmlm.structural import parameter_names

    text = "function f(uint256 a, bytes calldata data, address payable, mapping(uint => uint) storage m)"
    assert parameter_names(text + " internal {") == ["a", "data", None, "m"]
    head = "function g() public virtual override(A, B) onlyOwner /* override */ returns (uint256) {"
    assert header_specifiers(head, "0.8.26") == "virtual override(A, B)"
    assert header_specifiers(head, "0.5.16") == ""  # neither keyword exists before 0.6


def test_getter_is_drafted_as_its_state_variable(solcjs) -> None:
    """A public getter's draft is the variable's declaration (it replaces the declaration)."""
    src = "pragma solidity 0.8.26;\ncontract G {\n    mapping(address => uint256) public credit;\n    uint256 public constant CAP = 0x1234;\n}\n"
    out = solcjs({"G.sol": src})["contracts"]["G.sol"]["G"]
    lifted = lift_contract(
        out["evm"]["deployedBytecode"]["object"],
        abi=out["abi"],
        storage_layout=out["storageLayout"],
    )
    by_sig = {f.signature: f for f in lifted.functions}
    credit = draft_function(
        lifted,
        by_sig["credit(address)"],
        abi=out["abi"],
        storage_layout=out["storageLayout"],
        getter=True,
    )
    assert credit.text == "mapping(address => uint256) public credit"
    cap = draft_function(
        lifted, by_sig["CAP()"], abi=out["abi"], storage_layout=out["storageLayout"], getter=True
    )
    assert cap.text == "uint256 public constant CAP = 4660"


CHECKED = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
contract Checked {
    uint256 public total;
    function add(uint256 a, uint256 b) public returns (uint256) {
        total = total + a;
        return a + b;
    }
    function sub(uint256 a, uint256 b) public pure returns (uint256) { return a - b; }
    function mul(uint256 a, uint256 b) public pure returns (uint256) { return a * b; }
    function mix(uint256 a, uint256 b) public pure returns (uint256) {
        uint256 w;
        unchecked { w = a * 3 + b; }
        return w + (a - 7) * 2;
    }
}
"""


@pytest.mark.parametrize("setting", ["opt200", "noopt", "ir200"])
@pytest.mark.parametrize("fn_name", ["add", "sub", "mul", "mix"])
def test_checked_arithmetic_is_a_checked_operator(setting: str, fn_name: str) -> None:
    """The compiler's overflow test and Panic(0x11) come back as Solidity's checked ``+ - *``
    (no panic in assembly), wrapping arithmetic sits in ``unchecked { }`` per statement, and
    the draft behaves the same, overflowing calls included (the edge calls pass 2**256 - 1).
    Negative control: the same draft with the checked operators made wrapping differs."""
    sig = f"{fn_name}(uint256,uint256)"
    draft, (result, deployed, path, start, length, selector, behaviour) = _draft_and_check(
        {"Checked.sol": CHECKED},
        setting,
        "0.8.26",
        "Checked.sol:Checked",
        "Checked.sol",
        "Checked",
        fn_name,
        sig,
        None,
    )
    assert behaviour.same is True, behaviour.first_difference
    body = draft.text.split("{", 1)[1]
    checked = [
        ln for ln in body.splitlines() if re.search(r" [-+*] ", ln) and "unchecked" not in ln
    ]
    assert checked, draft.text  # at least one checked operator outside `unchecked`
    assert "0x4e487b71" not in draft.text and "__panic" not in draft.text, draft.text
    if fn_name == "mix":  # `a * 3 + b` wraps: it stays in an unchecked block
        assert "unchecked {" in draft.text, draft.text
    # negative control: the checked statements made wrapping -> no Panic(0x11) on overflow
    wrapped = "\n".join(_wrapping(ln) if ln in checked else ln for ln in draft.text.splitlines())
    other = _behaviour_of(result, deployed, path, start, length, selector, wrapped)
    assert other.same is False


def _wrapping(line: str) -> str:
    """The statement ``line`` in ``unchecked { }``; a declaration stays outside, in scope."""
    indent, stmt = line[: len(line) - len(line.lstrip())], line.strip()
    m = re.fullmatch(r"(uint256) (\w+) = (.*);", stmt)
    if m:
        return f"{indent}{m[1]} {m[2]}; unchecked {{ {m[2]} = {m[3]}; }}"
    return f"{indent}unchecked {{ {stmt} }}"


PAYABLE_RETURN = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
contract Proxy { fallback() external payable {} }
contract Factory {
    Proxy public last;
    function make(uint256 salt) public returns (Proxy p) {
        p = Proxy(payable(address(uint160(salt))));
        last = p;
    }
}
"""


def test_returned_contract_with_payable_fallback() -> None:
    """A returned contract whose type has a payable fallback converts from ``payable(…)``
    (solc rejects the conversion from a plain address): the draft recompiles and behaves
    the same."""
    draft, (*_, behaviour) = _draft_and_check(
        {"F.sol": PAYABLE_RETURN},
        "opt200",
        "0.8.26",
        "F.sol:Factory",
        "F.sol",
        "Factory",
        "make",
        "make(uint256)",
        None,
    )
    assert "Proxy(payable(" in draft.text, draft.text
    assert behaviour.same is True, behaviour.first_difference


PACKED = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
contract Packed {
    address public keeper = msg.sender;
    bool public locked;
    uint64 public stamp;
    int16 public mood;
    uint256[] internal items;
    function set(bool on, uint64 t, int16 m) public {
        require(msg.sender == keeper, "keeper");
        locked = on;
        stamp = t;
        mood = m;
    }
    function handOver(address next) public {
        require(!locked, "locked");
        keeper = next;
    }
    function item(uint256 i) public view returns (uint256) { return items[i]; }
    function ratio(uint256 a, uint256 b) public pure returns (uint256) { return a / b; }
    function buffer(uint256 n) public pure returns (uint256) { return new uint256[](n).length; }
}
"""


@pytest.mark.parametrize("setting", ["opt200", "noopt", "ir200"])
@pytest.mark.parametrize(
    "fn_name,signature,expect",
    [
        ("set", "set(bool,uint64,int16)", ["locked = ", "stamp = uint64("]),
        ("handOver", "handOver(address)", ["keeper = next;", "require(!locked"]),
        ("item", "item(uint256)", ["// Panic(0x32)"]),
        ("ratio", "ratio(uint256,uint256)", ["// Panic(0x12)"]),
        ("buffer", "buffer(uint256)", ["// Panic(0x41)"]),
    ],
)
def test_packed_variables_and_panics_are_solidity(
    setting: str, fn_name: str, signature: str, expect: list[str]
) -> None:
    """State variables sharing a slot are read and written by name (not ``sload``/``sstore``
    of the slot in assembly), and the panics 0x32 / 0x12 / 0x41 are raised by Solidity
    statements; the drafts behave the same, out-of-range calls included. Negative control: a
    draft whose Panic(0x32) statement raises Panic(0x12) instead differs."""
    draft, (result, deployed, path, start, length, selector, behaviour) = _draft_and_check(
        {"Packed.sol": PACKED},
        setting,
        "0.8.26",
        "Packed.sol:Packed",
        "Packed.sol",
        "Packed",
        fn_name,
        signature,
        None,
    )
    assert behaviour.same is True, (behaviour.first_difference, draft.text)
    for e in expect:  # via-IR loads the slot once into a local: the store stays in assembly
        if setting != "ir200" or e.startswith("// Panic"):
            assert e in draft.text, draft.text
    assert "__panic" not in draft.text, draft.text
    if fn_name == "item":
        wrong = draft.text.replace("__z[0] = 0;  // Panic(0x32)", "__z[0] = 1 / __z.length;")
        other = _behaviour_of(result, deployed, path, start, length, selector, wrong)
        assert other.same is False


DYNAMIC = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
contract Dyn {
    uint256 public total;
    mapping(bytes32 => uint256) public seen;
    function sum(uint256[] calldata xs) public returns (uint256 s) {
        for (uint256 i = 0; i < xs.length; i++) s += xs[i];
        total = s;
    }
    function mark(bytes memory b) public { seen[keccak256(b)] += b.length; }
    function pick(uint256[] memory xs, uint256 i) public pure returns (uint256) { return xs[i]; }
}
"""


@pytest.mark.parametrize("setting", ["opt200", "noopt", "ir200"])
@pytest.mark.parametrize(
    "fn_name,signature",
    [("sum", "sum(uint256[])"), ("mark", "mark(bytes)"), ("pick", "pick(uint256[],uint256)")],
)
def test_calldata_reads_are_solidity(setting: str, fn_name: str, signature: str) -> None:
    """``calldataload`` (a dynamic parameter's offset word, the ABI decoder's length reads and
    checks) is a Solidity calldata slice converted to ``bytes32`` from 0.8.5; the drafts
    behave the same (edge calls include empty and 3-element arrays, random ones malformed
    lengths). Negative control: slices one byte short (the last byte zero-padded) differ."""
    draft, (result, deployed, path, start, length, selector, behaviour) = _draft_and_check(
        {"Dyn.sol": DYNAMIC},
        setting,
        "0.8.26",
        "Dyn.sol:Dyn",
        "Dyn.sol",
        "Dyn",
        fn_name,
        signature,
        None,
    )
    assert behaviour.same is True, (behaviour.first_difference, draft.text)
    assert "uint256(bytes32(msg.data[" in draft.text, draft.text
    short = draft.text.replace(" + 32 : msg.data.length", " + 31 : msg.data.length")
    other = _behaviour_of(result, deployed, path, start, length, selector, short)
    assert other.same is False


SCRATCH = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
library Errs {
    error Overflowed(uint8 bits, uint256 value);
    error Closed();
}
contract Scratch {
    error Unauthorized();
    error TooLarge(uint256 value, uint256 limit);
    uint256[][] public rows;
    address public owner;
    constructor() { owner = msg.sender; rows.push(); rows.push(); }
    function guard(uint256 x) public view returns (uint256) {
        if (msg.sender != owner) {
            assembly { mstore(0, 0x82b42900) revert(0x1c, 0x04) }
        }
        if (x > 100) {
            assembly {
                mstore(0, 0x677fd0e3) mstore(0x20, x) mstore(0x40, 100) revert(0x1c, 0x44)
            }
        }
        return x + 1;
    }
    function put(uint256 i, uint256 x) public { rows[i].push(x); }
    function pull(address to, uint256 x) public pure returns (uint256) {
        assembly {
            if eq(x, 1) { mstore(0, 0x82b42900) revert(0x1c, 0x04) }
            let m := mload(0x40)
            mstore(0x40, to)
            if gt(x, 5) { mstore(0, 0x82b42900) revert(0x1c, 0x04) }
            mstore(0x40, m)
        }
        return x;
    }
    function cast(uint256 x) public pure returns (uint8) {
        if (x > 255) revert Errs.Overflowed(8, x);
        return uint8(x);
    }
    function half(uint256 x) public pure returns (uint256) {
        if (x == 0) {
            assembly { mstore(0, 0x4e487b71) mstore(0x20, 0x12) revert(0x1c, 0x24) }
        }
        return 100 / x;
    }
    function shut(uint256 x) public pure returns (uint256) {
        if (x < 2) {
            assembly { mstore(0, CLOSED) revert(0x1c, 0x04) }
        }
        return x;
    }
}
""".replace("CLOSED", "0x1cdde67b")  # the selector of Closed()


@pytest.mark.parametrize("setting", ["opt200", "noopt", "ir200"])
@pytest.mark.parametrize(
    "fn_name,signature,expect,wrong",
    [
        (
            "guard",
            "guard(uint256)",
            ["revert Unauthorized();", "revert TooLarge("],
            [("revert TooLarge(", "revert TooLarge(1 + ")],
        ),
        (
            "cast",
            "cast(uint256)",
            ["revert Errs.Overflowed("],
            [("revert Errs.Overflowed(", "revert Errs.Overflowed(1 + ")],
        ),
        (
            "half",
            "half(uint256)",
            ["// Panic(0x12)"],
            [("__z = 1 / __z;  // Panic(0x12)", "__z = __z - 1;  // Panic(0x12)")],
        ),
        (
            "shut",
            "shut(uint256)",
            ["revert Errs.Closed();"],
            [("revert Errs.Closed();", "revert Errs.Overflowed(0, 0);")],
        ),
        (
            "put",
            "put(uint256,uint256)",
            [],
            [
                ("keccak256(abi.encode(uint256(", "keccak256(abi.encode(uint256(1 + "),
                ("mstore(0, __x)", "mstore(0, add(__x, 1))"),
            ],
        ),
    ],
)
def test_scratch_space_errors_and_hashes_are_solidity(
    setting: str,
    fn_name: str,
    signature: str,
    expect: list[str],
    wrong: list[tuple[str, str]],
) -> None:
    """A custom error written in scratch space by inline assembly (``mstore(0, selector)``,
    argument words at 0x20…, ``revert(0x1c, 4 + 32·k)``) is ``revert Name(…);``, an error of
    a library is ``revert Lib.Name(…);`` (also one raised only in assembly, absent from the
    contract's ABI: its selector is the AST's); the hash of
    one scratch word (a storage array's data slot) is ``keccak256(abi.encode(…))`` (in a
    Solidity statement) or the ``__hash1`` helper (inside an assembly expression), and the
    scratch store before it is gone. The drafts behave the same. Negative control: a changed
    error argument or hashed word differs."""
    draft, (result, deployed, path, start, length, selector, behaviour) = _draft_and_check(
        {"Scratch.sol": SCRATCH},
        setting,
        "0.8.26",
        "Scratch.sol:Scratch",
        "Scratch.sol",
        "Scratch",
        fn_name,
        signature,
        None,
    )
    assert behaviour.same is True, (behaviour.first_difference, draft.text)
    if fn_name == "cast" and setting == "noopt":
        return  # unoptimised code ABI-encodes the error through a helper: it stays assembly
    for e in expect:
        assert e in draft.text, draft.text
    if fn_name == "put":
        assert "mstore(0, " not in draft.text.replace("mstore(0, __x)", ""), draft.text
    old, new = next((o, n) for o, n in wrong if o in draft.text)
    changed = draft.text.replace(old, new, 1)
    other = _behaviour_of(result, deployed, path, start, length, selector, changed)
    assert other.same is False


HIDDEN_LIB = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
library Errors {
    error Bad(uint256 value, address who);
}
library Helper {
    function check(uint256 x) internal view {
        if (x > 10) revert Errors.Bad(x, msg.sender);
    }
}
"""
HIDDEN_MAIN = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
import {Helper} from "./Lib.sol";
contract Main {
    uint256 public last;
    function set(uint256 x) public { Helper.check(x); last = x; }
}
"""


@pytest.mark.parametrize("setting", ["opt200", "noopt", "ir200"])
def test_error_the_file_cannot_name_is_encoded_by_solidity(setting: str) -> None:
    """A custom error declared where the spliced file does not see it (a library that the
    file does not import) is ABI-encoded by ``abi.encodeWithSelector`` and only the revert
    is assembly; the draft behaves the same. Negative control: a changed argument differs."""
    draft, (result, deployed, path, start, length, selector, behaviour) = _draft_and_check(
        {"Lib.sol": HIDDEN_LIB, "Main.sol": HIDDEN_MAIN},
        setting,
        "0.8.26",
        "Main.sol:Main",
        "Main.sol",
        "Main",
        "set",
        "set(uint256)",
        None,
    )
    assert behaviour.same is True, (behaviour.first_difference, draft.text)
    if setting == "noopt":
        return  # unoptimised code ABI-encodes the error through a helper: it stays assembly
    assert "abi.encodeWithSelector(bytes4(0x" in draft.text, draft.text
    changed = draft.text.replace(");  // Bad", ", uint256(1));  // Bad", 1)
    assert changed != draft.text, draft.text
    other = _behaviour_of(result, deployed, path, start, length, selector, changed)
    assert other.same is False


@pytest.mark.parametrize("setting", ["opt200", "noopt", "ir200"])
def test_scratch_error_stays_assembly_where_the_free_memory_pointer_is_clobbered(
    setting: str,
) -> None:
    """Inline assembly that uses the free memory pointer's word as scratch (Solady's
    ``mstore(0x40, to)``) and raises an error before restoring it: ``revert Name()`` would
    encode at that pointer (out of gas), so the scratch-space revert after the store stays
    assembly (one before it is Solidity) and the draft behaves the same (it did not before
    the guard: "revert data … vs Halt")."""
    draft, (*_, behaviour) = _draft_and_check(
        {"Scratch.sol": SCRATCH},
        setting,
        "0.8.26",
        "Scratch.sol:Scratch",
        "Scratch.sol",
        "Scratch",
        "pull",
        "pull(address,uint256)",
        None,
    )
    assert behaviour.same is True, (behaviour.first_difference, draft.text)
    if setting == "ir200":
        return  # the Yul optimiser removes the clobbering store (dead before the revert)
    assert draft.text.count("revert Unauthorized();") == 1, draft.text  # before the store
    assert "revert(28, 4)" in draft.text, draft.text  # after it


ENCODED = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
interface IBook {
    function balanceOf(address who) external view returns (uint256);
    function credit(address who, uint256 v) external returns (bool);
}
contract Encoded {
    IBook public book;
    uint256 public total;
    mapping(address => uint256) public balanceOf;
    event Moved(address indexed who, uint256 v, uint256 w);
    constructor() { book = IBook(address(this)); }
    function credit(address who, uint256 v) external returns (bool) {
        balanceOf[who] += v;
        return v != 7;
    }
    function held(address who) public view returns (uint256) {
        return book.balanceOf(who) + 1;
    }
    function send(address who, uint256 v) public {
        require(book.credit(who, v), "refused");
        total += v;
    }
    function digest(uint256 a, address b) public pure returns (bytes32) {
        return keccak256(abi.encode(a, b));
    }
    function pack(uint256 a) public pure returns (bytes memory) {
        return abi.encode(a, a / 2);
    }
    function note(uint256 v) public {
        assembly {
            let p := mload(0x40)
            mstore(p, v)
            mstore(add(p, 0x20), caller())
            log2(p, 0x40, 0x1234, v)
        }
    }
}
"""


@pytest.mark.parametrize("setting", ["opt200", "noopt", "ir200"])
@pytest.mark.parametrize(
    "fn_name,signature,expect,wrong",
    [
        (
            "held",
            "held(address)",
            "abi.encodeWithSelector(bytes4(0x70a08231), ",
            ("bytes4(0x70a08231)", "bytes4(0x18160ddd)"),
        ),
        (
            "send",
            "send(address,uint256)",
            "abi.encodeWithSelector(bytes4(0xef6506db), ",
            ("bytes4(0xef6506db), ", "bytes4(0xef6506db), 1 + "),
        ),
        (
            "digest",
            "digest(uint256,address)",
            "uint256(keccak256(abi.encode(",
            ("keccak256(abi.encode(", "keccak256(abi.encode(1 + "),
        ),
        ("note", "note(uint256)", "abi.encode(", ("abi.encode(", "abi.encode(1 + ")),
        ("pack", "pack(uint256)", "abi.encode(", ("abi.encode(", "abi.encode(1 + ")),
    ],
)
def test_encoded_words_are_solidity(
    setting: str, fn_name: str, signature: str, expect: str, wrong: tuple[str, str]
) -> None:
    """Words stored at the free memory pointer and read at once by a call (arguments after a
    selector), a hash or a log, and ``bytes`` objects built by ``abi.encode`` /
    ``abi.encodeWithSelector`` (length, words, the pointer moved) are Solidity's
    ``abi.encodeWithSelector`` / ``abi.encode`` (the pointer set from the encoding in
    assembly; the hash of an object is a Solidity expression); the drafts behave the same
    (calls into the contract itself, a refused credit, events, returned bytes). In ``opt200``
    every one of them is rewritten. Negative control: a changed selector or encoded word
    differs."""
    draft, (result, deployed, path, start, length, selector, behaviour) = _draft_and_check(
        {"Encoded.sol": ENCODED},
        setting,
        "0.8.26",
        "Encoded.sol:Encoded",
        "Encoded.sol",
        "Encoded",
        fn_name,
        signature,
        None,
    )
    assert behaviour.same is True, (behaviour.first_difference, draft.text)
    if expect not in draft.text:
        assert setting != "opt200", draft.text
        pytest.skip(f"{setting}: no encoding at the free memory pointer here")
    changed = draft.text.replace(*wrong, 1)
    assert changed != draft.text, draft.text
    other = _behaviour_of(result, deployed, path, start, length, selector, changed)
    assert other.same is False


OWNED = """// SPDX-License-Identifier: MIT
pragma solidity {version};
contract Owned {
    address internal s_owner;
    address internal s_pending;
    mapping(address => uint256) public credit;
    event Proposed(address indexed from, address indexed to);
    constructor() public { s_owner = msg.sender; }
    function owner() public view returns (address) { return s_owner; }
    function propose(address to) public {
        require(msg.sender == s_owner, "only owner");
        require(to != msg.sender, "not to self");
        s_pending = to;
        emit Proposed(s_owner, to);
    }
    function give(address to, uint256 amount) public returns (bool) {
        require(to != address(0), "zero");
        credit[to] = credit[to] + amount;
        return true;
    }
}
"""


@pytest.mark.parametrize(
    "version,setting", [("0.8.26", "opt200"), ("0.8.26", "ir200"), ("0.5.16", "opt200")]
)
@pytest.mark.parametrize(
    "fn_name,signature,expect",
    [
        ("owner", "owner()", ["return s_owner;"]),
        (
            "propose",
            "propose(address)",
            ['require(msg.sender == s_owner, "only owner");', "s_pending = to;"],
        ),
        ("give", "give(address,uint256)", ["credit[to]"]),
    ],
)
def test_drafts_read_like_source(
    version: str, setting: str, fn_name: str, signature: str, expect: list[str]
) -> None:
    """Straight-line blocks merged before inlining (``return s_owner;``, no copies), address
    casts that cancel (``msg.sender == s_owner``, ``s_pending = to;``) and the ABI decoder's
    calldata size check left to the recompiled header: the drafts behave the same, and also
    on calldata too short for the parameters (which the header's own decoder rejects).
    Negative control: the draft's owner check made to compare with ``s_pending`` differs."""
    from evmlm.decompile.verify import Machine, deploy_original, run_calls

    source = OWNED.replace("{version}", version)
    if version >= "0.7":
        source = source.replace("constructor() public", "constructor()")
    draft, (result, deployed, path, start, length, selector, behaviour) = _draft_and_check(
        {"Owned.sol": source},
        setting,
        version,
        "Owned.sol:Owned",
        "Owned.sol",
        "Owned",
        fn_name,
        signature,
        None,
    )
    assert behaviour.same is True, (behaviour.first_difference, draft.text)
    for e in expect:  # via-IR and 0.5 keep `s_owner` in a local (read twice): a uint256
        if setting != "ir200" and version >= "0.8" or e.startswith("s_pending"):
            assert e in draft.text, draft.text
    assert "msg.data.length" not in draft.text, draft.text
    rc = recompile(result, path, deployed, start, length, draft.text, selector=selector)
    orig, args, error = deploy_original(rc.original_creation_bytecode or "", rc.abi)
    assert orig is not None, error
    cand = Machine.deploy(rc.creation_bytecode or "", args)
    sel = bytes.fromhex((selector or "")[2:])
    word = bytes(12) + bytes.fromhex("5b38da6a701c568545dcfcb03fcb875f56beddc4")
    short = [sel + word[:n] for n in (0, 1, 20, 31)] + [sel + word + bytes(31), sel + word * 2]
    assert run_calls(orig, cand, short, 0).same is not False
    if fn_name == "propose" and "msg.sender == s_owner" in draft.text:
        wrong = draft.text.replace("msg.sender == s_owner", "msg.sender == s_pending")
        other = _behaviour_of(result, deployed, path, start, length, selector, wrong)
        assert other.same is False
