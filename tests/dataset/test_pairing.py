from __future__ import annotations

import pytest

from evmlm.dataset.pairing import AstIndex, canonical_signature, resolve_contract


def _resolve(result, name):
    art = next(a for a in result.contracts if a.name == name)
    fns, counts = resolve_contract(result, art)
    return {f.signature: f for f in fns}, counts


def test_every_selector_of_a_deployed_contract_is_resolved(token_opt):
    fns, counts = _resolve(token_opt, "Token")
    art = next(a for a in token_opt.contracts if a.name == "Token")
    assert set(fns) == set(art.method_identifiers)
    assert counts == {"resolved": len(art.method_identifiers), "unresolved": 0, "no_body": 0}
    for sig, f in fns.items():
        assert f.selector == "0x" + art.method_identifiers[sig]


def test_overridden_function_maps_to_most_derived_definition(token_opt):
    fns, _ = _resolve(token_opt, "Token")
    bump = fns["bump(uint256)"]
    assert bump.defining_contract == "Token.sol:Token"
    assert "onlyOwner" in bump.solidity and "clamp" in bump.solidity
    capped, _ = _resolve(token_opt, "CappedToken")
    assert capped["limit()"].defining_contract == "Token.sol:CappedToken"
    assert "CAP / 2" in capped["limit()"].solidity
    assert fns["limit()"].defining_contract == "Token.sol:Token"


def test_inherited_function_maps_to_base_source(token_opt):
    fns, _ = _resolve(token_opt, "CappedToken")
    owner = fns["owner()"]
    assert owner.defining_contract == "Base.sol:Base" and owner.source_path == "Base.sol"
    assert owner.solidity.startswith("function owner() public view returns (address)")
    assert owner.visibility == "public" and owner.state_mutability == "view"
    assert fns["transfer(address,uint256)"].defining_contract == "Token.sol:Token"


def test_public_state_variables_are_getters(token_opt):
    fns, _ = _resolve(token_opt, "Token")
    assert fns["balanceOf(address)"].kind == "getter"
    assert fns["balanceOf(address)"].solidity == "mapping(address => uint256) public balanceOf"
    assert fns["counter()"].defining_contract == "Base.sol:Base"
    assert fns["CAP()"].solidity == "uint256 public constant CAP = 1_000_000"
    assert fns["name()"].state_mutability == "view" and "Tökén" in fns["name()"].solidity


def test_overloaded_names_are_told_apart(token_opt):
    fns, _ = _resolve(token_opt, "Token")
    one, two = fns["transfer(address)"], fns["transfer(address,uint256)"]
    assert one.selector == "0x1a695230" and two.selector == "0xa9059cbb"
    assert one.solidity.startswith("function transfer(address to) external")
    assert two.solidity.startswith("function transfer(address to, uint256 value) public")
    assert one.visibility == "external" and two.visibility == "public"


def test_source_offsets_are_utf8_bytes(token_opt):
    fns, _ = _resolve(token_opt, "Token")
    for f in fns.values():
        data = token_opt.sources[f.source_path].encode("utf-8")
        assert data[f.source_start : f.source_start + f.source_length].decode("utf-8") == f.solidity
    # Token.sol has multi-byte characters before transfer: byte and character offsets differ.
    t = fns["transfer(address,uint256)"]
    text = token_opt.sources["Token.sol"]
    assert text.index("function transfer(address to, uint256 value)") < t.source_start


def test_contract_context_lists_what_the_function_uses(token_opt):
    fns, _ = _resolve(token_opt, "Token")
    ctx = fns["transfer(address,uint256)"].contract_context.splitlines()
    assert ctx == [
        "mapping(address => uint256) public balanceOf;",
        "event Transfer(address indexed from, address indexed to, uint256 value);",
        "error Insufficient(address who, uint256 have, uint256 want);",
    ]
    bump = fns["bump(uint256)"].contract_context
    # the modifier, and the state variable only the modifier reads (closure over modifiers)
    assert "modifier onlyOwner()" in bump and "address internal _owner;" in bump
    assert "event Bumped(address indexed by, uint256 amount);" in bump
    assert "uint256 public counter;" in bump and "uint256 public constant CAP = 1_000_000;" in bump
    assert "_unused" not in bump and "struct Info" not in bump
    info = fns["info()"].contract_context
    assert info.startswith("struct Info {") and info.endswith("Info internal _info;")


def test_abstract_declaration_is_counted_not_paired(token_opt):
    fns, counts = _resolve(token_opt, "Base")
    assert "limit()" not in fns and counts["no_body"] == 1
    assert set(fns) == {"bump(uint256)", "counter()", "info()", "owner()"}


def test_old_ast_without_function_selector_matches_by_canonical_signature(old_opt):
    assert old_opt.version == "0.5.17"
    fns, counts = _resolve(old_opt, "OldCounter")
    assert counts["resolved"] == 5 and counts["unresolved"] == 0
    assert fns["increment(uint256)"].solidity.startswith("function increment(uint256 by)")
    assert fns["increment()"].solidity.startswith("function increment() public")
    assert fns["credits(address)"].kind == "getter"


def test_canonical_signature_of_ast_nodes(token_opt):
    index = AstIndex(token_opt.sources, token_opt.asts)
    sigs = sorted(
        canonical_signature(d.node)
        for d in index.decls.values()
        if d.node.get("nodeType") == "FunctionDefinition"
        and d.node.get("kind") == "function"
        and d.contract == "Token"
    )
    assert (
        "total(uint256[])" in sigs
        and "transfer(address,uint256)" in sigs
        and "largest(uint256,uint256)" in sigs
    )


def test_unknown_contract_raises_key_error(token_opt):
    index = AstIndex(token_opt.sources, token_opt.asts)
    with pytest.raises(KeyError):
        index.resolve("Token.sol", "Nope", {})


REACHED = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.4;

library Lib {
    function inner(uint256 x) internal pure returns (uint256) { return x + 1; }
    function outer(uint256 x) public pure returns (uint256) { return x * 2; }
}

abstract contract A {
    using Lib for uint256;
    uint256 internal v;
    modifier guard() virtual { _; }
    function _hook(uint256 x) internal virtual { v = x; }
    function _base() internal virtual { v = 0; }
    function run(uint256 x) external guard {
        _hook(x.inner());
        this.ping();
        Lib.outer(x);
    }
    function ping() external {}
}

contract B is A {
    event Hooked(uint256 x);
    modifier guard() override { require(msg.sender != address(0), "zero"); _; }
    function _hook(uint256 x) internal override { emit Hooked(x); super._hook(x); }
    function _base() internal override { }
}
"""


def test_reached_code_follows_the_compiler():
    """Modifiers and internal calls resolve to the most derived override, as solc does;
    super, using-for library calls followed; this.f and public library functions (message
    calls) not; the member calls that are not message calls are found."""
    from evmlm.solc import compile_sources

    result = compile_sources({"R.sol": REACHED}, setting="opt200", version="0.8.26")
    art = next(a for a in result.contracts if a.name == "B")
    fns, _ = resolve_contract(result, art)
    run = next(f for f in fns if f.signature == "run(uint256)")
    heads = [t.split("{")[0].strip() for t, _ in run.reached]
    # x.inner() is a library function (inlined); this.ping() and Lib.outer(x) are message calls
    # (CALL, DELEGATECALL)
    assert [run.solidity.encode()[o:].split(b"(")[0] for o in run.internal_member_calls] == [
        b"inner"
    ]
    hook = next(t for t, _ in run.reached if "emit Hooked" in t)
    assert [hook.encode()[o:].split(b"(")[0] for o in dict(run.reached)[hook]] == [b"_hook"]
    assert heads == [
        "function inner(uint256 x) internal pure returns (uint256)",
        "function _hook(uint256 x) internal virtual",  # A's, through super._hook
        "modifier guard() override",
        "function _hook(uint256 x) internal override",
    ]
    assert next(f for f in fns if f.signature == "ping()").reached == ()
