"""Function recovery and the context-sensitive CFG on real compiler output."""

from __future__ import annotations

import evmole
import pytest

from evmlm.config import LiftConfig
from evmlm.evm import lift_contract
from evmlm.evm.cfg import ContractCFG
from evmlm.evm.disasm import load_bytecode, split_metadata

from .conftest import FIXTURE_NAMES, lifted, load_fixture


def test_selectors_equal_the_abi(fixture_name: str) -> None:
    """Linear (noopt, 0.4-0.6) and binary-search (opt200, via-IR) dispatchers alike."""
    c = load_fixture(fixture_name)
    want = {"0x" + s for s in c["method_identifiers"].values()}
    lc = lifted(fixture_name)
    assert set(lc.selectors) == want
    assert lc.unresolved_jumps == 0 and lc.context_fallbacks == 0


def test_selectors_without_abi_match_evmole_entries() -> None:
    c = load_fixture("univ2_pair_0516_opt200")
    lc = lift_contract(c["runtime_bytecode"])
    info = evmole.contract_info(c["runtime_bytecode"], selectors=True)
    assert {f.selector for f in lc.functions if f.selector} == {
        "0x" + f.selector for f in info.functions
    }
    by_sel = {"0x" + f.selector: f.bytecode_offset for f in info.functions}
    assert all(f.entry == by_sel[f.selector] for f in lc.functions if f.selector)


@pytest.mark.parametrize("name", [n for n in FIXTURE_NAMES if n.startswith(("features", "weth9"))])
def test_fallback_and_receive(name: str) -> None:
    c = load_fixture(name)
    kinds = {e["type"] for e in c["abi"]}
    got = {f.kind for f in lifted(name).functions}
    assert ("fallback" in got) == ("fallback" in kinds)
    assert ("receive" in got) == ("receive" in kinds)
    # Without the ABI the code alone tells: a receive/fallback that does something is found.
    bare = {f.kind for f in lift_contract(c["runtime_bytecode"]).functions}
    assert ("receive" in bare) == ("receive" in kinds)
    assert ("fallback" in bare) == ("fallback" in kinds)


def test_payable_and_view_facts() -> None:
    lc = lifted("weth9_0426_opt200")
    assert lc.function("0xd0e30db0").payable  # deposit()
    assert not lc.function("0xa9059cbb").payable
    assert lc.function("0x70a08231").view_like and not lc.function("0xa9059cbb").view_like


def test_context_sensitivity_keeps_callers_apart() -> None:
    """balanceOf shares internal code with transfer in OZ ERC20 but must not reach its SSTOREs."""
    lc = lifted("oz496_erc20_0826_noopt")
    bal, tr, tf = (lc.function(s) for s in ("0x70a08231", "0xa9059cbb", "0x23b872dd"))
    assert "SSTORE" not in bal.tac and "SSTORE" in tr.tac
    assert bal.n_instructions < tr.n_instructions < tf.n_instructions
    # evmole's context-insensitive CFG merges them; ours clones shared blocks per caller.
    shared = set(bal.blocks) & set(tr.blocks)
    assert shared  # the ABI decoders and helpers are shared code ...
    assert "_1" in tf.tac or len(tf.blocks) < tf.n_blocks  # ... and cloned per context


def test_context_bound_fallback_is_reported() -> None:
    """Past the bound, contexts merge (k-limited): reported as fallbacks, never silently."""
    c = load_fixture("oz496_erc20_0826_noopt")
    full = lifted("oz496_erc20_0826_noopt")
    for bound in (1, 4):
        tight = {
            p: lift_contract(
                c["runtime_bytecode"],
                abi=c["abi"],
                config=LiftConfig(max_contexts_per_block=bound, context_policy=p),
            )
            for p in ("labels", "labels-branch")
        }
        for lc in tight.values():
            assert lc.context_fallbacks > 0
            assert set(lc.selectors) == set(full.selectors)
            for f in full.functions:
                g = lc.function(f.selector) if f.selector else None
                if g is not None and g.unresolved_jumps == 0:
                    assert set(f.blocks) <= set(g.blocks)  # merging only over-approximates
        # What merging loses shows up as counted unresolved jumps, per function and per
        # contract (the baseline); merged keys that keep return-address slots apart from data
        # (labels-branch, docs/lifter.md) lose less.
        base = tight["labels"]
        assert base.unresolved_jumps > 0 and any(f.unresolved_jumps for f in base.functions)
        assert tight["labels-branch"].unresolved_jumps < base.unresolved_jumps


def test_unresolved_jumps_are_counted() -> None:
    # PUSH1 0 CALLDATALOAD JUMP: the target comes from calldata and cannot be resolved.
    cfg = ContractCFG(bytes.fromhex("600035565b00"))
    assert cfg.unresolved_jumps == {3}
    lc = lift_contract("600035565b00")
    assert lc.unresolved_jumps == 1


def test_internal_functions_by_call_return_pattern() -> None:
    """Features._move is called from move and moveFrom: one internal function, entered twice."""
    c = load_fixture("features_0826_noopt")
    lc = lifted("features_0826_noopt")
    internal = [f for f in lc.functions if f.kind == "internal"]
    assert internal
    with_event = [f for f in internal if "EMIT(Moved" in f.tac]
    assert len(with_event) == 1
    mv, mvf = (
        lc.function("0x0c7ec0ea") or lc.function(_sel("move(address,uint256)")),
        lc.function(_sel("moveFrom(address,address,uint256)")),
    )
    assert with_event[0].entry in mv.blocks and with_event[0].entry in mvf.blocks
    off = lift_contract(
        c["runtime_bytecode"], abi=c["abi"], config=LiftConfig(internal_functions=False)
    )
    assert not [f for f in off.functions if f.kind == "internal"]


def _sel(sig: str) -> str:
    from evmlm.evm.abi import selector_of

    return f"{selector_of(sig):#010x}"


def test_metadata_is_not_lifted() -> None:
    c = load_fixture("oz496_erc20_0826_opt200")
    code = load_bytecode(c["runtime_bytecode"])
    exe, meta = split_metadata(code)
    lc = lifted("oz496_erc20_0826_opt200")
    assert lc.metadata_size == len(meta) and lc.code_size == len(code)
    assert all(b < len(exe) for f in lc.functions for b in f.blocks)


def test_call_form_of_internal_calls() -> None:
    """lift.inline_internal=false: callers show CALLPRIVATE(0x<entry>, args) instead of the body."""
    from evmlm.evm import parse_function, print_function

    c = load_fixture("oz496_erc20_0826_noopt")
    lc = lift_contract(
        c["runtime_bytecode"],
        abi=c["abi"],
        storage_layout=c["storage_layout"],
        config=LiftConfig(inline_internal=False),
    )
    inline = lifted("oz496_erc20_0826_noopt")
    tr, tr_inline = lc.function("0xa9059cbb"), inline.function("0xa9059cbb")
    assert "CALLPRIVATE(0x" in tr.tac and "SSTORE" not in tr.tac and "SSTORE" in tr_inline.tac
    assert tr.n_blocks < tr_inline.n_blocks and not tr.view_like  # effects of callees still count
    callee = int(
        next(
            line
            for line in tr.tac.splitlines()
            if "CALLPRIVATE(0x" in line and ", v" in line and "= " not in line
        )
        .split("(")[1]
        .split(",")[0],
        16,
    )
    body = next(f for f in lc.functions if f.kind == "internal" and f.entry == callee)
    assert "SSTORE(_balances[" in body.tac and "EMIT(Transfer" in body.tac
    for f in lc.functions:
        fn = parse_function(f.tac)
        assert print_function(fn) == f.tac
        assert all(s.op != "PHI" or s.args for b in fn.blocks for s in b.stmts)
