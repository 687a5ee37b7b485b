"""Each recogniser on real compiled code: its named form appears when on, the raw form when off."""

from __future__ import annotations

import pytest

from evmlm.config import LIFT_RECOGNISERS
from evmlm.evm.abi import selector_of

from .conftest import lifted

ALL = LIFT_RECOGNISERS


def _without(name: str) -> tuple[str, ...]:
    return tuple(r for r in ALL if r != name)


def _fn(fixture: str, sig: str, recognisers: tuple[str, ...] = ALL) -> str:
    f = lifted(fixture, recognisers).function(f"{selector_of(sig):#010x}")
    assert f is not None, sig
    return f.tac


def test_args_named_with_abi_types() -> None:
    on = _fn("oz496_erc20_0826_opt200", "transfer(address,uint256)")
    off = _fn("oz496_erc20_0826_opt200", "transfer(address,uint256)", _without("args"))
    assert "arg0" in on and "arg1" in on and "CALLDATALOAD(0x4)" not in on
    assert "CALLDATALOAD(0x4)" in off and "CALLDATALOAD(0x24)" in off and "arg0" not in off


def test_args_follow_static_tuple_head_words() -> None:
    # UniswapV2Pair.swap(uint256,uint256,address,bytes): bytes is a dynamic head word (an offset).
    on = _fn("univ2_pair_0516_opt200", "swap(uint256,uint256,address,bytes)")
    assert all(a in on for a in ("arg0", "arg1", "arg2", "arg3"))


def test_msg_sender() -> None:
    on = _fn("weth9_0426_opt200", "deposit()")
    off = _fn("weth9_0426_opt200", "deposit()", _without("msg_sender"))
    assert "msg.sender" in on and "CALLER()" not in on
    assert "CALLER()" in off and "msg.sender" not in off


def test_mapping_and_nested_mapping() -> None:
    on = _fn("weth9_0426_opt200", "transferFrom(address,address,uint256)")
    assert (
        "SLOAD(0x3[" in on and "SLOAD(0x4[" in on and "][msg.sender])" in on
    )  # allowance[src][msg.sender]
    off = _fn("weth9_0426_opt200", "transferFrom(address,address,uint256)", _without("mapping"))
    assert "KECCAK256(0x0, 0x40)" in off and "SLOAD(0x3[" not in off


def test_storage_vars_from_layout() -> None:
    on = _fn("oz496_erc20_0826_opt200", "totalSupply()")
    off = _fn("oz496_erc20_0826_opt200", "totalSupply()", _without("storage_vars"))
    assert "SLOAD(_totalSupply)" in on and "SLOAD(0x2)" in off
    assert "_allowances[" in _fn("oz496_erc20_0826_opt200", "allowance(address,address)")


def test_events_from_abi_topics() -> None:
    on = _fn("oz496_erc20_0826_opt200", "approve(address,uint256)")
    off = _fn("oz496_erc20_0826_opt200", "approve(address,uint256)", _without("events"))
    assert "EMIT(Approval, " in on and "LOG3(" not in on
    assert (
        "LOG3(" in off
        and "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925" in off
    )


def test_require_reason_strings() -> None:
    on = _fn("oz496_erc20_0826_opt200", "transfer(address,uint256)")
    assert "ERROR(v" in on and '"ERC20: transfer amount exceeds balance")' in on
    off = _fn("oz496_erc20_0826_opt200", "transfer(address,uint256)", _without("require"))
    assert "ERROR(" not in off and "0x8c379a0" in off
    # 0.5.x (OZ 2.5.1, no optimizer) encodes reasons the same way.
    assert '"ERC20: transfer to the zero address"' in _fn(
        "oz251_erc20_0517_noopt", "transfer(address,uint256)"
    )


@pytest.mark.parametrize("fixture", ["features_0826_opt200", "features_0826_ir200"])
def test_custom_errors(fixture: str) -> None:
    on = _fn(fixture, "sweep(address,address,uint256)")
    assert "ERROR(" in on and ", NotOwner)" in on


@pytest.mark.parametrize(
    "fixture", ["features_0826_noopt", "features_0826_opt200", "features_0826_ir200"]
)
def test_checked_arithmetic_panic_folded(fixture: str) -> None:
    on = _fn(fixture, "add(uint256,uint256)")
    off = _fn(fixture, "add(uint256,uint256)", _without("panic"))
    assert "PANIC(0x11)" in on and "0x4e487b71" not in on
    assert "PANIC(" not in off and "0x4e487b71" in off


def test_external_call_selector() -> None:
    on = _fn("features_0826_opt200", "sweep(address,address,uint256)")
    off = _fn("features_0826_opt200", "sweep(address,address,uint256)", _without("calls"))
    assert "= CALL(" in on and "# callee 0xa9059cbb transfer(address,uint256)" in on
    assert "# callee" not in off
    pair = _fn("univ2_pair_0516_opt200", "swap(uint256,uint256,address,bytes)")
    assert "callee 0xa9059cbb" in pair  # _safeTransfer -> token.call(transfer)
    assert "STATICCALL(" in pair and "callee 0x70a08231 balanceOf(address)" in pair


def test_all_off_is_raw_tac() -> None:
    raw = _fn("oz496_erc20_0826_opt200", "transfer(address,uint256)", ())
    for named in ("arg0", "msg.sender", "EMIT(", "ERROR(", "PANIC(", "_balances", "# callee"):
        assert named not in raw
