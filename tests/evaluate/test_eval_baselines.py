"""Baselines on a real compiled contract (Panoramix in its own venv) and on hand-made TAC."""

from __future__ import annotations

import pytest

from evmlm.evaluate.baselines import panoramix
from evmlm.evaluate.baselines.retrieval import RetrievalIndex
from evmlm.evaluate.baselines.stub import signature_stub
from evmlm.evaluate.structure import analyse_function, signature_match


def test_signature_stub_parses_and_matches_signature() -> None:
    text = signature_stub("transfer(address,uint256[])", "0xa9059cbb")
    assert text == "function transfer(address arg0, uint256[] memory arg1) external {}"
    facts = analyse_function(text)
    assert facts.parsed and not facts.has_error
    assert signature_match("transfer(address,uint256[])", facts)
    assert signature_stub(None, "0xA9059CBB") == "function func_a9059cbb() external {}"


def test_retrieval_finds_the_train_function_with_the_same_shape() -> None:
    train_tac = [
        "function 0x70a08231 balanceOf(address)\n  block 0x0 prev=[] succ=[]\n    v1 = CALLDATALOAD(0x4)\n    v2 = SLOAD(mapping(0x0, v1))\n    RETURN(v2)",
        "function 0x095ea7b3 approve(address,uint256)\n  block 0x0 prev=[] succ=[]\n    v1 = CALLDATALOAD(0x4)\n    v2 = CALLDATALOAD(0x24)\n    SSTORE(mapping(0x1, v1), v2)\n    LOG3(0x8c5be1e5)",
    ]
    index = RetrievalIndex.build(train_tac, ["function balanceOf", "function approve"], ["a", "b"])
    query = "function 0x095ea7b3 approve(address,uint256)\n  block 0x10 prev=[] succ=[]\n    v7 = CALLDATALOAD(0x4)\n    v9 = CALLDATALOAD(0x24)\n    SSTORE(mapping(0x1, v7), v9)\n    LOG3(0x8c5be1e5)"
    ((solidity, train_id, sim),) = index.nearest([query])
    assert (solidity, train_id) == ("function approve", "b")
    assert sim > 0.9
    with pytest.raises(ValueError):
        RetrievalIndex.build([], [])


@pytest.mark.skipif(
    not panoramix.is_available(), reason="run scripts/setup_panoramix.sh (scripts/setup.sh does)"
)
def test_panoramix_decompiles_push0_bytecode(counter_source: str, solcjs) -> None:
    c = solcjs({"Counter.sol": counter_source})["contracts"]["Counter.sol"]["Counter"]
    runtime = c["evm"]["deployedBytecode"]["object"]
    assert "5f" in runtime  # 0.8.26 emits PUSH0: without the patch this decompiles to a bare revert
    out = panoramix.decompile_panoramix(
        runtime, timeout_s=60, signatures={"0xb20eb4c4": "bump(uint256)"}
    )
    assert set(c["evm"]["methodIdentifiers"].values()) <= {k.removeprefix("0x") for k in out}
    bump = out["0xb20eb4c4"]
    assert bump.startswith("def bump(uint256 arg1)")
    assert "too much" in bump and "log 0x5311a32e" in bump
    assert "unknown06661abd" in out["0x06661abd"]  # unnamed without a signature


def test_panoramix_missing_venv_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("EVMLM_PANORAMIX_PYTHON", str(tmp_path / "nope"))
    monkeypatch.setattr(panoramix, "repo_root", lambda: tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(panoramix.BaselineError, match="setup_panoramix.sh"):
        panoramix.decompile_panoramix("6080", timeout_s=5)


@pytest.mark.skipif(
    not panoramix.is_available(), reason="run scripts/setup_panoramix.sh (scripts/setup.sh does)"
)
def test_panoramix_per_function_texts_and_budget(counter_records, counter_compiled) -> None:
    from evmlm.evaluate.runner import predict_panoramix

    load = {counter_compiled.key: counter_compiled}.get
    preds, failures = predict_panoramix(counter_records, load, timeout_s=60)
    assert not failures
    assert {r["id"] for r in counter_records} == set(preds)
    assert preds["counter-bump"][0].startswith("def bump(uint256")
    preds, failures = predict_panoramix(counter_records, load, timeout_s=60, budget_s=0)
    assert all(t == "" for t, _ in preds.values()) and all("budget" in f for f in failures.values())
