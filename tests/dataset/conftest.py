"""Shared fixtures of the dataset tests: real solc-js compile outputs frozen in tests/fixtures/dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dataset"


def load_result(name: str):
    from evmlm.solc import CompileResult

    return CompileResult.from_json(
        json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    )


@pytest.fixture(scope="session")
def token_opt():
    return load_result("token.opt200")


@pytest.fixture(scope="session")
def token_noopt():
    return load_result("token.noopt")


@pytest.fixture(scope="session")
def old_opt():
    return load_result("old.opt200")


TAC = """function 0xa9059cbb transfer(address,uint256)
  block 0x1a4 prev=[0x0] succ=[0x1c2,0x1be]
    v3 = CALLDATALOAD(0x4)
    v4 = AND(v3, 0xffffffffffffffffffffffffffffffffffffffff)
    v7 = SLOAD(v6)
    JUMPI(0x1c2, v9)"""


def record(
    i: int,
    solidity: str,
    *,
    tac: str = TAC,
    contract: str = "A.sol:A",
    package: str = "pkg",
    cluster: str | None = None,
    **extra,
) -> dict:
    """A pair record with the fields the filters/dedup/split/export read."""
    r = {
        "id": f"{i:08d}",
        "contract": contract,
        "defining_contract": contract,
        "source_package": package,
        "compiler_version": "0.8.26",
        "optimizer": True,
        "runs": 200,
        "evm_version": None,
        "via_ir": False,
        "setting": "opt200",
        "compile_key": "k" * 64,
        "source_path": contract.split(":")[0],
        "source_start": 0,
        "source_length": len(solidity.encode()),
        "selector": "0xa9059cbb",
        "signature": "transfer(address,uint256)",
        "visibility": "public",
        "state_mutability": "nonpayable",
        "kind": "function",
        "origin": "corpus",
        "tac": tac,
        "solidity": solidity,
        "contract_context": "",
        "n_tac_lines": len(tac.splitlines()),
        "n_solidity_tokens": len(solidity.split()),
        "complexity": 2,
    }
    if cluster is not None:
        r["cluster_id"] = cluster
    r.update(extra)
    return r
