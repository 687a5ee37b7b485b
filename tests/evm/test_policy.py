"""Context policies behind one interface, the typed node key, and the per-contract budget."""

from __future__ import annotations

import dataclasses
import time

import pytest

from evmlm.config import LIFT_POLICIES, ConfigError, LiftConfig
from evmlm.evm import lift_contract
from evmlm.evm.cfg import (
    EXACT,
    KLIMITED,
    PER_BLOCK,
    ContractCFG,
    Label,
    NodeKey,
    Refined,
    make_policy,
)
from evmlm.evm.checks import synthetic_dispatcher

from .conftest import FIXTURE_NAMES, load_fixture

# A flag set on one path and tested after a merge point (solc's try/catch shape):
#   x = iszero(calldataload(0)); d = calldataload(0x20)
#   if x: goto M with [d, x]            (x == 1 there)
#   else: goto M with [R, 0]            (R a return address)
#   M: if x: STOP at E  else: JUMP to the slot below (R on the path where x == 0)
# Without branch refinement the walk reaches M with [d, x unknown], follows both sides and
# jumps to the data d: an unresolved jump on an infeasible path.
FLAG = bytes.fromhex(
    "600035"  # 00 PUSH1 0 CALLDATALOAD
    "602035"  # 03 PUSH1 0x20 CALLDATALOAD
    "90"  # 06 SWAP1
    "15"  # 07 ISZERO
    "80"  # 08 DUP1
    "601257"  # 09 PUSH1 0x12 JUMPI
    "5050"  # 0c POP POP
    "6017"  # 0e PUSH1 0x17 (R)
    "6000"  # 10 PUSH1 0
    "5b"  # 12 JUMPDEST (M)
    "601957"  # 13 PUSH1 0x19 JUMPI
    "56"  # 16 JUMP
    "5b00"  # 17 JUMPDEST STOP (R)
    "5b00"  # 19 JUMPDEST STOP (E)
)


def test_branch_policy_resolves_a_flag_tested_after_a_merge() -> None:
    base = ContractCFG(FLAG, policy="labels")
    new = ContractCFG(FLAG, policy="labels-branch")
    assert base.unresolved_jumps == {0x16}  # the baseline keeps the infeasible path ...
    assert new.unresolved_jumps == set()  # ... the branch policy does not
    at_m = {k.cond for k in new.nodes if k.pc == 0x12}
    assert at_m == {0, 1}  # one node per truth of the tested slot
    # Every edge the EVM can take is still there: x == 1 -> E, x == 0 -> R.
    succ = {(k.pc, s.pc) for k, n in new.nodes.items() for s in n.succ}
    assert {(0x12, 0x19), (0x12, 0x16), (0x16, 0x17)} <= succ
    # Refined values decide branches but are not printed as constants in the TAC.
    assert any(type(v) is Refined for n in new.nodes.values() for v in n.entry)


def test_policies_compared_on_the_fixtures() -> None:
    """On real solc output the branch policy resolves at least what the baseline does, finds
    the same functions, and hits the context bound no more often."""
    for name in FIXTURE_NAMES:
        c = load_fixture(name)
        got = {
            p: lift_contract(
                c["runtime_bytecode"], abi=c["abi"], config=LiftConfig(context_policy=p)
            )
            for p in LIFT_POLICIES
        }
        base, new = got["labels"], got["labels-branch"]
        assert set(new.selectors) == set(base.selectors), name
        assert new.unresolved_jumps <= base.unresolved_jumps, name
        assert new.context_fallbacks <= base.context_fallbacks, name
        assert new.partial is None and base.partial is None


def test_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="lift.context_policy"):
        LiftConfig(context_policy="nope")
    with pytest.raises(ValueError, match="unknown context policy"):
        make_policy("nope", 64, {})


def test_node_key_is_a_typed_frozen_value() -> None:
    k = NodeKey(0x12, (None, None), 2)
    assert (
        dataclasses.is_dataclass(k)
        and k == NodeKey(0x12, (None, None), 2)
        and hash(k) == hash(NodeKey(0x12, (None, None), 2))
    )
    assert not k.is_merged and NodeKey(0x12, ((0, 0x17),), 3, KLIMITED).is_merged
    assert NodeKey(0x12, (), -1, PER_BLOCK).is_merged and k != NodeKey(
        0x12, (None, None), 2, EXACT, 1
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.pc = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="height"):
        NodeKey(0x12, (None,), 2)
    with pytest.raises(ValueError, match="tier"):
        NodeKey(0x12, ((0, None),), -1, PER_BLOCK)  # "any height" keeps no label positions
    with pytest.raises(ValueError, match="tier"):
        NodeKey(0x12, (), 0, 7)
    cfg = ContractCFG(
        bytes.fromhex(load_fixture("weth9_0426_opt200")["runtime_bytecode"].removeprefix("0x"))
    )
    assert all(type(key) is NodeKey and key == node.key for key, node in cfg.nodes.items())


def test_a_tiny_time_budget_gives_a_recorded_partial_result() -> None:
    c = load_fixture("oz496_erc20_0826_noopt")
    full = lift_contract(c["runtime_bytecode"], abi=c["abi"])
    t0 = time.perf_counter()
    cut = lift_contract(c["runtime_bytecode"], abi=c["abi"], config=LiftConfig(max_seconds=1e-6))
    assert time.perf_counter() - t0 < 5
    assert full.partial is None and cut.partial is not None and "time budget" in cut.partial
    assert len(cut.functions) < len(full.functions)
    again = type(cut).from_dict(cut.to_dict())  # the lift stage stores it
    assert again.partial == cut.partial and again.seconds == cut.seconds > 0


def test_a_node_budget_gives_a_partial_cfg_with_unexplored_nodes() -> None:
    c = load_fixture("weth9_0426_opt200")
    lc = lift_contract(c["runtime_bytecode"], abi=c["abi"], config=LiftConfig(max_nodes=30))
    assert lc.partial is not None and "node budget (30)" in lc.partial and lc.n_nodes == 30
    cfg = ContractCFG(bytes.fromhex(c["runtime_bytecode"].removeprefix("0x")), max_nodes=30)
    assert cfg.partial and any(n.unexplored for n in cfg.nodes.values())


def test_large_linear_dispatcher_is_lifted_whole() -> None:
    """No ABI, 2,000 selectors: every selector found; evmole (quadratic) is not consulted."""
    code, sels = synthetic_dispatcher(2000)
    lc = lift_contract(code, config=LiftConfig(max_seconds=60))
    assert lc.partial is None and sorted(int(s, 16) for s in lc.selectors) == sels
    # How the time grows with the number of selectors is measured by benchmarks/lift.py
    # --dispatcher, not asserted here (a timed assertion fails on a loaded machine).


def test_stale_nodes_pruned_and_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node whose successors' keys change when its entry grows leaves the earlier
    successors behind with no edge into them; the CFG drops them and counts unresolved jumps
    on live nodes only. Negative control: without the pruning, UniswapV2Pair's walk keeps such
    an orphan."""
    from evmlm.evm.disasm import load_bytecode, split_metadata

    exe, _ = split_metadata(
        load_bytecode(load_fixture("univ2_pair_0516_opt200")["runtime_bytecode"])
    )
    g = ContractCFG(exe)
    live = set(g.reachable(g.start))
    assert live == set(g.nodes)
    assert g.unresolved_jumps == {n.block.last.pc for n in g.nodes.values() if n.unresolved}
    monkeypatch.setattr(ContractCFG, "_prune", lambda self: None)
    raw = ContractCFG(exe)
    assert len(set(raw.reachable(raw.start))) < len(raw.nodes)
    assert len(raw.nodes) > len(g.nodes)


def test_a_set_of_return_addresses_is_context() -> None:
    """labels-branch keys a slot holding a set of return addresses (the exit of a merged node)
    apart from one holding data; a label-only key joins them and loses the return address."""
    p = make_policy("labels-branch", 64, {}, frozenset({0x10, 0x20}))
    ret = frozenset({0x10, 0x20})
    a = p.node_key(0x30, [ret, Label(0x10)])
    b = p.node_key(0x30, [7, Label(0x10)])
    assert a != b and a.ctx == (ret, Label(0x10)) and b.ctx == (None, Label(0x10))


def test_thirdweb_corerouter_noopt_fully_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    """thirdweb's CoreRouter (MIT), solc 0.8.37 without optimiser, from the 3-setting full build:
    8 unresolved jump sites when sets of return addresses counted as data (negative control),
    none now."""
    import json
    from pathlib import Path

    from evmlm.evm.cfg import BranchPolicy
    from evmlm.evm.disasm import load_bytecode, split_metadata

    path = Path(__file__).resolve().parents[1] / "fixtures" / "evm_regress"
    d = json.loads((path / "corerouter_noopt.json").read_text())
    code = load_bytecode(d["contracts"]["CoreRouter"]["runtime_bytecode"])
    exe, _ = split_metadata(code)
    assert ContractCFG(exe, full_size=len(code)).unresolved_jumps == set()
    monkeypatch.setattr(
        BranchPolicy, "slot_context", lambda self, v: v if type(v) is Label else None
    )
    assert len(ContractCFG(exe, full_size=len(code)).unresolved_jumps) > 0
