"""End-to-end evaluation: a tiny model and all baselines on functions of a real compiled contract."""

from __future__ import annotations

import json
from pathlib import Path

from evmlm.config import EvalConfig
from evmlm.evaluate.runner import score_system
from evmlm.evaluate.stage import evaluate

ROOT = Path(__file__).resolve().parents[2]


def _train_records() -> list[dict]:
    recs = [
        json.loads(line)
        for line in (ROOT / "tests" / "fixtures" / "train" / "pairs.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return [r for r in recs if r.get("split") == "train"] or recs


def test_reference_as_prediction_scores_perfectly_and_behaves_the_same(
    counter_records, counter_compiled
) -> None:
    cfg = EvalConfig(n_random_calls=32)
    preds = {r["id"]: (r["solidity"], 0.0) for r in counter_records}
    scores = score_system(
        "oracle",
        counter_records,
        preds,
        load_compile={counter_compiled.key: counter_compiled}.get,
        config=cfg,
    )
    assert len(scores) == len(counter_records) == 3
    for s in scores:
        assert (
            s.similarity == 1.0
            and s.edit_distance == 0.0
            and s.structural_f1 == 1.0
            and s.signature_match
        )
        assert s.recompiles is True and s.behaves_same is True and s.behaviour_calls == 2 * 35, (
            s.note
        )


def test_evaluate_writes_report_with_model_and_all_baselines(
    tmp_path: Path, tiny_model: Path, counter_records, counter_compiled
) -> None:
    cfg = EvalConfig(
        max_functions=3, max_new_tokens=24, batch_size=2, n_examples=2, panoramix_timeout_s=60
    )
    summary = evaluate(
        tiny_model,
        None,
        tmp_path,
        config=cfg,
        records=counter_records,
        train_records=_train_records(),
        load_compile={counter_compiled.key: counter_compiled}.get,
        run_name="t",
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["systems"] == [
        "oracle",
        "structural",
        "model",
        "model_draft",
        "panoramix",
        "retrieval",
        "signature_stub",
        "verified",
    ]
    for sys in report["systems"]:
        agg = report["overall"][sys]
        assert agg["n"] == 3
        for key in (
            "similarity_mean",
            "edit_distance_mean",
            "bleu_mean",
            "rouge_l_mean",
            "structural_f1_mean",
            "share_sim_gt_0.8",
            "share_edit_lt_0.4",
            "signature_match",
            "fact_precision",
            "fact_recall",
            "fact_precision_write",
            "recompiles",
            "behaves_same",
        ):
            assert key in agg
    # the signature stub states exactly the signature: strict match on every function, and it compiles
    assert report["overall"]["signature_stub"]["signature_match"] == 1.0
    assert report["overall"]["signature_stub"]["recompiles"] == 1.0
    # ... but an empty body does not behave like bump/double/setOwner
    assert report["overall"]["signature_stub"]["behaves_same"] == 0.0
    # Panoramix output is not Solidity: it never recompiles
    assert report["overall"]["panoramix"]["recompiles"] == 0.0
    assert set(report["by_category"]) == {
        "length",
        "visibility",
        "inline_assembly",
        "package",
        "setting",
    }
    assert any("retrieval" in f for f in report["findings"])
    md = (tmp_path / "report.md").read_text()
    assert "## Examples" in md and md.count("<table>") == 2 and "similarity_hist_cdf.png" in md
    for png in ("similarity_hist_cdf.png", "edit_distance_box.png", "similarity_vs_edit.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["n_functions"] == 3 and "3 test functions" in summary["line"]
    # the oracle (the source itself) passes every step of the funnel; the header is forced
    assert report["overall"]["oracle"]["funnel"] == {
        "n": 3,
        "parses": 3,
        "compiles": 3,
        "selector_present": 3,
        "behaves_same": 3,
        "undetermined": 0,
        "differs": 0,
        "not_checked": 0,
    }
    assert "## Funnel" in md and "Verified selection kept" in md
    names = {
        "bump": "function bump(uint256 amount) external returns (uint256)",
        "double": "function double(uint256 x) public pure returns (uint256)",
        "setOwner": "function setOwner(address next) external",
    }
    for f in report["functions"]:
        head = names[f["signature"].split("(")[0]]
        assert f["scores"]["model"]["hypothesis"].startswith(head), f["scores"]["model"][
            "hypothesis"
        ][:80]
        assert f["scores"]["verified"]["candidate"] in (
            "draft",
            "greedy",
            "sample1",
            "sample2",
            "none",
        )


def test_evaluate_without_model_scores_oracle_and_baselines(
    tmp_path: Path, counter_records, counter_compiled
) -> None:
    cfg = EvalConfig(max_functions=3, baselines=("signature_stub",), n_examples=0)
    evaluate(
        None,
        None,
        tmp_path,
        config=cfg,
        records=counter_records,
        load_compile={counter_compiled.key: counter_compiled}.get,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["systems"] == ["oracle", "structural", "signature_stub"]
    assert (
        report["overall"]["oracle"]["behaves_same"] == 1.0
        and report["overall"]["signature_stub"]["funnel"]["differs"] == 3
    )
    # the structural draft is drafted for every function (no failure note) and is checked like the others
    structural = [f["scores"]["structural"] for f in report["functions"]]
    assert all(
        s["hypothesis"].strip() and not (s["note"] or "").startswith("structural failed")
        for s in structural
    ), [s["note"] for s in structural]
    assert report["overall"]["structural"]["funnel"]["compiles"] == 3, [
        s["note"] for s in structural
    ]


def test_verified_selection_keeps_a_behaving_candidate(counter_records, counter_compiled) -> None:
    from evmlm.evaluate.runner import Checker, select_verified

    cfg = EvalConfig(n_random_calls=8)
    check = Checker({counter_compiled.key: counter_compiled}.get, cfg)
    r = next(r for r in counter_records if r["signature"].startswith("bump"))
    wrong = r["solidity"].replace("+= amount", "+= amount + 1")
    broken = r["solidity"].replace("amount;", "amount")
    cands = {
        r["id"]: [("draft", wrong, 0.0), ("greedy", broken, 0.0), ("sample1", r["solidity"], 0.0)]
    }
    out, kept = select_verified([r], cands, check)
    assert kept[r["id"]] == "sample1" and out[r["id"]][0] == r["solidity"]
    assert check(r, wrong).behaves_same is False and check(r, broken).recompiles is False
    # no behaving candidate: the compiling one (agreeing on most calls) beats the broken one
    out, kept = select_verified(
        [r], {r["id"]: [("draft", broken, 0.0), ("greedy", wrong, 0.0)]}, check
    )
    assert kept[r["id"]] == "greedy"
    # nothing compiles: the draft
    out, kept = select_verified(
        [r], {r["id"]: [("draft", broken, 0.0), ("greedy", "junk", 0.0)]}, check
    )
    assert kept[r["id"]] == "draft"
