"""The selector-recovery check on real contracts, and npm artifact discovery."""

from __future__ import annotations

import json
from pathlib import Path

from evmlm.evm.checks import Contract, iter_artifacts, random_value, selector_recovery

from .conftest import FIXTURE_NAMES, load_fixture


def test_selector_recovery_on_fixtures_is_exact() -> None:
    rep = selector_recovery(
        Contract(n, load_fixture(n)["runtime_bytecode"], load_fixture(n)["abi"])
        for n in FIXTURE_NAMES
    )
    assert rep.contracts == len(FIXTURE_NAMES) and rep.true_pos == sum(
        len(load_fixture(n)["method_identifiers"]) for n in FIXTURE_NAMES
    )
    assert rep.f1 == 1.0 and rep.misses == [] and rep.extras == [] and rep.failures == []


def test_selector_recovery_lists_misses(tmp_path: Path) -> None:
    c = load_fixture("weth9_0426_opt200")
    abi = c["abi"] + [{"type": "function", "name": "notThere", "inputs": [], "outputs": []}]
    rep = selector_recovery([Contract("weth", c["runtime_bytecode"], abi)])
    assert (
        rep.false_neg == 1
        and rep.misses[0][2] == "notThere()"
        and rep.recall < 1.0
        and rep.precision == 1.0
    )


def test_iter_artifacts_reads_hardhat_layout_and_dedups(tmp_path: Path) -> None:
    c = load_fixture("weth9_0426_opt200")
    art = {
        "contractName": "WETH9",
        "abi": c["abi"],
        "deployedBytecode": "0x" + c["runtime_bytecode"],
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "WETH9.json").write_text(json.dumps(art))
    (tmp_path / "b.json").write_text(json.dumps(art))  # the same bytecode again
    (tmp_path / "c.json").write_text(
        json.dumps({"abi": [], "deployedBytecode": "0x"})
    )  # an interface
    (tmp_path / "a" / "WETH9.dbg.json").write_text("{}")
    got = list(iter_artifacts(tmp_path))
    assert len(got) == 1 and got[0].runtime == c["runtime_bytecode"]


def test_random_values_encode() -> None:
    import random

    import eth_abi

    rng = random.Random(0)
    types = [
        "uint256",
        "int24",
        "address",
        "bool",
        "bytes",
        "bytes32",
        "string",
        "uint8[]",
        "(uint256,address)",
        "(uint256,bytes)[2]",
    ]
    for _ in range(20):
        eth_abi.encode(types, [random_value(t, rng, ["0x" + "a1" * 20]) for t in types])


def test_recover_selectors_equals_lift_contract() -> None:
    from evmlm.config import LiftConfig
    from evmlm.evm import lift_contract
    from evmlm.evm.lifter import recover_selectors

    # A generous time budget: under the 1.5 s default a loaded machine can cut the lift short
    # (a partial lift recovers fewer selectors), which is not what this test is about.
    config = LiftConfig(max_seconds=120.0)
    for n in FIXTURE_NAMES:
        code = load_fixture(n)["runtime_bytecode"]
        assert recover_selectors(code) == lift_contract(code, config=config).selectors
