"""Snapshot tests: the TAC of well-known functions, frozen from real compiler output.

A change to the lifter that changes any of these shows up as a diff. To accept a change on
purpose, regenerate with ``EVMLM_UPDATE_SNAPSHOTS=1 pytest tests/evm/test_snapshots.py`` and
review the diff of tests/fixtures/evm/snapshots/ in the commit.
"""

from __future__ import annotations

import os

import pytest

from evmlm.evm.abi import selector_of

from .conftest import FIXTURES, lifted

SNAPSHOTS = FIXTURES / "snapshots"
CASES = [
    ("oz496_erc20_0826_opt200", "transfer(address,uint256)"),
    ("oz496_erc20_0826_opt200", "approve(address,uint256)"),
    ("oz496_erc20_0826_ir200", "transfer(address,uint256)"),
    ("univ2_pair_0516_opt200", "swap(uint256,uint256,address,bytes)"),
    ("weth9_0426_opt200", "transferFrom(address,address,uint256)"),
    ("weth9_0426_noopt", "withdraw(uint256)"),
    ("oz251_erc20_0517_opt200", "transfer(address,uint256)"),
]


@pytest.mark.parametrize(
    "fixture, signature", CASES, ids=[f"{f}-{s.split('(')[0]}" for f, s in CASES]
)
def test_tac_snapshot(fixture: str, signature: str) -> None:
    fn = lifted(fixture).function(f"{selector_of(signature):#010x}")
    assert fn is not None and fn.signature == signature
    path = SNAPSHOTS / f"{fixture}.{signature.split('(')[0]}.tac"
    if os.environ.get("EVMLM_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        if not os.environ.get("EVMLM_UPDATE_SNAPSHOTS") and os.environ.get("CI"):
            pytest.fail(f"{path} missing; create it with EVMLM_UPDATE_SNAPSHOTS=1")
        path.write_text(fn.tac)
    assert fn.tac == path.read_text(), (
        f"TAC of {signature} in {fixture} changed; see the module docstring"
    )
