"""Aggregation and findings on hand-made scores with known values; config validation."""

from __future__ import annotations

import pytest

from evmlm.config import ConfigError, DecompileConfig, EvalConfig, load_config
from evmlm.evaluate.report import aggregate, category_of, findings
from evmlm.evaluate.runner import FunctionScore, select_functions


def _score(
    i: str, system: str, sim: float, ed: float, same: bool | None, facts: dict | None = None
) -> FunctionScore:
    return FunctionScore(
        id=i,
        system=system,
        hypothesis="x = 1;",
        similarity=sim,
        edit_distance=ed,
        bleu=50.0,
        rouge_l=0.5,
        structural_f1=0.5,
        signature_match=True,
        parses=True,
        facts=facts or {"all": [1, 2, 4], "call": [0, 1, 0]},
        recompiles=same is not None,
        behaves_same=same,
    )


def test_aggregate_known_values() -> None:
    scores = [
        _score("a", "model", 0.9, 0.2, True),
        _score("b", "model", 0.5, 0.6, False),
        _score("c", "model", 0.85, 0.39, None),
    ]
    agg = aggregate(scores, {"a": "x = 1;", "b": "x = 1;", "c": "x = 1;"})
    assert agg["n"] == 3
    assert agg["similarity_mean"] == pytest.approx((0.9 + 0.5 + 0.85) / 3)
    assert agg["share_sim_gt_0.8"] == pytest.approx(2 / 3) and agg[
        "share_edit_lt_0.4"
    ] == pytest.approx(2 / 3)
    assert agg["behaves_same"] == pytest.approx(1 / 3) and agg["behaviour_checked"] == 2
    assert agg["recompiles"] == pytest.approx(2 / 3)
    # micro-averaged facts: overlap 3 of 6 claimed, 3 of 12 due; calls: 0 of 3 claimed, none due
    assert agg["fact_precision"] == pytest.approx(0.5) and agg["fact_recall"] == pytest.approx(0.25)
    assert (
        agg["fact_precision_call"] == 0.0 and agg["fact_recall_call"] is None
    )  # no calls were due
    none = aggregate(
        [_score("a", "model", 0.1, 0.9, False, facts={"all": [0, 0, 3]})], {"a": "x = 1;"}
    )
    assert (
        none["fact_precision"] is None and none["fact_recall"] == 0.0
    )  # claimed nothing: precision undefined
    assert agg["corpus_bleu"] == pytest.approx(100.0)


def test_findings_state_when_the_model_does_not_beat_retrieval() -> None:
    base = {
        "similarity_mean": 0.5,
        "edit_distance_mean": 0.5,
        "bleu_mean": 10.0,
        "rouge_l_mean": 0.3,
        "structural_f1_mean": 0.3,
        "behaves_same": 0.1,
        "n": 2,
        "share_sim_gt_0.8": 0.0,
        "share_edit_lt_0.4": 0.0,
        "recompiles": 0.0,
        "behaviour_checked": 0,
        "fact_precision": 1.0,
        "fact_recall": 0.0,
    }
    worse = {
        **base,
        "similarity_mean": 0.4,
        "edit_distance_mean": 0.6,
        "bleu_mean": 5.0,
        "rouge_l_mean": 0.2,
        "structural_f1_mean": 0.2,
        "behaves_same": 0.0,
    }
    better = {
        **base,
        "similarity_mean": 0.6,
        "edit_distance_mean": 0.4,
        "bleu_mean": 20.0,
        "rouge_l_mean": 0.4,
        "structural_f1_mean": 0.4,
        "behaves_same": 0.2,
    }
    assert (
        "does NOT beat nearest-neighbour retrieval on any"
        in findings({"model": worse, "retrieval": base})[0]
    )
    assert (
        findings({"model": better, "retrieval": base})[0]
        == "The model beats nearest-neighbour retrieval on every headline metric."
    )
    mixed = {**better, "similarity_mean": 0.45}
    assert findings({"model": mixed, "retrieval": base})[0].startswith(
        "The model does not beat nearest-neighbour retrieval on: semantic similarity 0.450 vs 0.500"
    )


def test_categories_and_sampling() -> None:
    rec = {
        "id": "1",
        "solidity": "function f() external { assembly { sstore(0, 1) } }",
        "visibility": "external",
        "source_package": "p@1",
        "setting": "ir200",
    }
    assert (
        category_of(rec, "inline_assembly") == "yes"
        and category_of(rec, "length") == "short (<40 tokens)"
    )
    assert (
        category_of(rec, "package") == "p@1"
        and category_of(rec, "setting") == "ir200"
        and category_of(rec, "visibility") == "external"
    )
    recs = [{"id": str(i)} for i in range(50)]
    a, b = select_functions(recs, 10, seed=1), select_functions(list(reversed(recs)), 10, seed=1)
    assert a == b and len(a) == 10


def test_eval_and_decompile_config_errors_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="evaluate.baselines"):
        load_config(None, ["--evaluate.baselines=[ghidra]"])
    with pytest.raises(ConfigError, match="evaluate.max_functions"):
        EvalConfig(max_functions=0)
    with pytest.raises(ConfigError, match="decompile.batch_size"):
        DecompileConfig(batch_size=0)
    assert load_config(None, ["--evaluate.max_functions=7"]).evaluate.max_functions == 7
