"""evmlm.ladder without training: rung configs (budgets split, data stages linked, not rerun)
and the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from evmlm.ladder import RUNGS, LadderError, _link_data, render, rung_config


def test_rungs_share_one_budget_and_differ_only_in_what_they_start_from(tmp_path: Path) -> None:
    cfgs = {
        r.name: rung_config(None, ["--evaluate.max_functions=7"], r, tmp_path, 600) for r in RUNGS
    }
    s, f, c = cfgs["scratch-small"], cfgs["smollm2-ft"], cfgs["smollm2-cpt-ft"]
    assert s.model.base == "scratch" and s.pretrain.time_budget_s + s.finetune.time_budget_s == 600
    assert s.finetune.learning_rate == 1e-3 and f.finetune.learning_rate == 3e-4
    assert f.model.base == "smollm2-135m" and f.finetune.time_budget_s == 600 and not f.cpt.enabled
    assert c.cpt.enabled and c.cpt.time_budget_s + c.finetune.time_budget_s == 600
    assert c.cpt.max_steps == round(300 / 8.0)  # the linear decay ends with the budget
    assert {x.evaluate.max_functions for x in cfgs.values()} == {7}
    assert {x.evaluate.seed for x in cfgs.values()} == {0}  # the same sampled functions
    assert c.run_dir == tmp_path / "smollm2-cpt-ft"


def test_data_stages_are_linked_from_a_finished_run_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for s in ("corpus", "compile", "lift", "dataset"):
        (data / s).mkdir(parents=True)
        (data / s / "_stage.json").write_text("{}")
    _link_data(tmp_path / "rung", data)
    assert (tmp_path / "rung" / "dataset").resolve() == (data / "dataset").resolve()
    _link_data(tmp_path / "rung", data)  # idempotent
    (data / "lift" / "_stage.json").unlink()
    with pytest.raises(LadderError, match="stage lift has not finished"):
        _link_data(tmp_path / "other", data)


def test_table_lists_every_rung_and_the_baselines() -> None:
    o = {"similarity_mean": 0.6, "edit_distance_mean": 0.5, "recompiles": 0.2, "n": 9}
    rows = [
        {
            "rung": r.name,
            "train_seconds": {"finetune": 60.0},
            "cpt_val_loss": [1.2, 1.1] if "cpt" in r.name else None,
            "finetune": {"steps": 5, "eval_loss": 0.9},
            "n_functions": 9,
            "overall": {"model": o, "model_draft": o, "retrieval": o, "signature_stub": o},
        }
        for r in RUNGS
    ]
    meta = dict(budget_min=1, data_run="d", n_functions=9, split="test", seed=0)
    md = render(rows, {**meta, "max_new_tokens": 128, "load_start": 1.0, "load_end": 2.0})
    assert all(f"| {r.name} | model_draft | 1.0 | 0.600 |" in md for r in RUNGS)
    assert "| baseline | signature_stub |" in md and "1.200 -> 1.100" in md
