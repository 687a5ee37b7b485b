"""`evmlm experiment`: variants at one step budget on real pairs with a tiny Llama, the
comparison report, skipping finished variants, grid files and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evmlm.config import (
    ConfigError,
    ExperimentConfig,
    ExperimentVariant,
    load_config,
    load_experiment_config,
)
from evmlm.experiment import PRESETS, expand, run_experiment, variant_config

from .conftest import FIXTURES

REPO = Path(__file__).resolve().parents[2]


def test_presets_and_grid_files() -> None:
    assert [v.name for v in PRESETS["strategies"].variants] == [
        "attention",
        "mlp",
        "both",
        "both->mlp->attn",
        "attn->mlp->both",
        "both->mlp->both",
    ]
    assert [v.name for v in PRESETS["phases"].variants][-1] == "early->late"
    for f in sorted((REPO / "configs" / "experiments").glob("*.yaml")):
        exp = load_experiment_config(f)
        assert expand(exp)
    rank = load_experiment_config(REPO / "configs" / "experiments" / "lora-rank.yaml")
    assert [v.name for v in expand(rank)] == [
        "lora_r=4,lora_targets=attention",
        "lora_r=4,lora_targets=all",
        "lora_r=16,lora_targets=attention",
        "lora_r=16,lora_targets=all",
    ]
    base = load_config(None, []).finetune
    cfg = variant_config(base, rank, expand(rank)[0])
    assert (cfg.lora_r, cfg.lora_targets, cfg.max_steps, cfg.time_budget_s) == (
        4,
        "attention",
        60,
        None,
    )
    assert cfg.early_stopping_patience is None and cfg.grad_norm_steps == 10
    bad = ExperimentConfig(variants=(ExperimentVariant("x", {"lora_phases": "attn->nope"}),))
    with pytest.raises(ConfigError, match="variant x: finetune.lora_phases"):
        variant_config(base, bad, bad.variants[0])
    with pytest.raises(ConfigError, match="experiment.variants"):
        ExperimentConfig()
    with pytest.raises(ConfigError, match=r"experiment.grid.lora_rank"):
        ExperimentConfig(grid={"lora_rank": (4,)})


def test_experiment_runs_variants_and_writes_report(tmp_path: Path, tiny_base: Path) -> None:
    ds = tmp_path / "dataset"
    ds.mkdir()
    shutil.copy(FIXTURES / "pairs.jsonl", ds / "pairs.jsonl")
    run_cfg = load_config(
        None,
        [
            "--finetune.max_length=160",
            "--finetune.batch_size=4",
            "--finetune.eval_steps=2",
            "--finetune.save_steps=100",
            "--finetune.bf16=false",
            "--finetune.max_eval_examples=4",
            "--finetune.warmup_steps=0",
        ],
    )
    exp = ExperimentConfig(
        name="t",
        max_steps=4,
        grad_norm_steps=2,
        variants=(
            ExperimentVariant("attention", {"lora_targets": "attention"}),
            ExperimentVariant("both->mlp->attn", {"lora_phases": "both->mlp->attn"}),
        ),
    )
    out = tmp_path / "exp"
    s = run_experiment(run_cfg, exp, base_model=tiny_base, dataset_dir=ds, out_dir=out)
    rows = {r["variant"]: r for r in s["variants"]}
    assert set(rows) == {"attention", "both->mlp->attn"}
    for r in rows.values():
        assert r["steps"] == 4 and [st for st, _ in r["eval_losses"]] == [0, 2, 4]
    # the step-0 model is the base for both: evaluated once (in the first), shared
    assert rows["attention"]["eval_losses"][0] == rows["both->mlp->attn"]["eval_losses"][0]
    state = json.loads(
        (
            out / "both->mlp->attn" / "checkpoints" / "checkpoint-4" / "trainer_state.json"
        ).read_text()
    )
    assert [h["step"] for h in state["log_history"] if "eval_loss" in h] == [2, 4]
    for r in rows.values():
        assert r["grad_norm_mean"]["total"] > 0
    # attention-only has no mlp adapters; the phased variant has both groups
    assert (
        "mlp" not in rows["attention"]["grad_norm_mean"]
        and "mlp" in rows["both->mlp->attn"]["grad_norm_mean"]
    )
    assert rows["attention"]["trainable_params"] < rows["both->mlp->attn"]["trainable_params"]
    report = (out / "report.md").read_text()
    for name, r in rows.items():
        assert f"| {name} | {r['eval_loss']:.4f} |" in report
    assert "Lowest final eval loss" in report
    for png in ("eval_loss.png", "final_metrics.png", "gradient_norms.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "results.json").read_text())["max_steps"] == 4
    # finished variants are not rerun: same metrics, no new training
    mtime = (out / "attention" / "adapter" / "adapter_model.safetensors").stat().st_mtime
    again = run_experiment(run_cfg, exp, base_model=tiny_base, dataset_dir=ds, out_dir=out)
    assert again["variants"] == s["variants"]
    assert (out / "attention" / "adapter" / "adapter_model.safetensors").stat().st_mtime == mtime


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    env_py = [sys.executable, "-m", "evmlm", "experiment"]
    for args, msg in (
        ([], "exactly one of --preset"),
        (["--preset", "nope"], "--preset nope: unknown"),
        (["--grid", str(tmp_path / "none.yaml")], "experiment file not found"),
    ):
        p = subprocess.run(env_py + args, capture_output=True, text=True, cwd=tmp_path)
        assert p.returncode == 2, p.stderr
        assert msg in p.stderr and "Traceback" not in p.stderr


def test_report_has_columns_with_and_without_draft(tmp_path: Path) -> None:
    from evmlm.experiment import write_report

    def row(name: str, loss: float, sim: float, sim_d: float, rec_d: float) -> dict:
        return {
            "variant": name,
            "eval_loss": loss,
            "best_eval_loss": loss,
            "eval_losses": [[0, 2.0], [4, loss]],
            "trainable_params": 1000,
            "steps": 4,
            "seconds": 1.0,
            "n_functions": 8,
            "similarity": sim,
            "recompiles": 0.0,
            "recompile_checked": 8,
            "behaves_same": 0.0,
            "behaviour_checked": 0,  # unchecked: "–", not 0 %
            "similarity_draft": sim_d,
            "recompiles_draft": rec_d,
            "recompile_checked_draft": 8,
            "behaves_same_draft": 0.25,
            "behaviour_checked_draft": 4,
        }

    exp = ExperimentConfig(name="t", max_steps=4, variants=(ExperimentVariant("a", {}),))
    write_report(exp, [row("a", 1.5, 0.1, 0.6, 0.5), row("b", 1.2, 0.2, 0.7, 0.75)], tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "| similarity | recompiles | behaves same | similarity +draft |" in report
    # ranked by eval loss: b first; no-draft cells, then +draft cells
    assert report.index("| b |") < report.index("| a |")
    assert "| 0.200 | 0% | – | 0.700 | 75% | 25% |" in report
    assert "| 0.100 | 0% | – | 0.600 | 50% | 25% |" in report
    assert "**b**, 0.3000 nats/token (20.0%) below the runner-up a" in report


def test_experiment_base_is_the_finetune_stages_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, save_hf_base: object
) -> None:
    from evmlm.experiment import experiment_base

    monkeypatch.setenv("EVMLM_CACHE_DIR", str(tmp_path / "cache"))

    def cfg(*flags: str):
        return load_config(None, [f"--run.runs_dir={tmp_path / 'runs'}", *flags])

    run = tmp_path / "runs" / "default"
    assert experiment_base(cfg("--model.base=scratch")) == ("pretrain", run / "pretrain" / "model")
    assert experiment_base(cfg("--finetune.base_model=/m")) == ("dataset", "/m")
    assert experiment_base(cfg("--cpt.enabled=true")) == ("cpt", run / "cpt" / "model")
    # a pretrained model.base: only the data stages run; the base is its converted folder
    local = save_hf_base(tmp_path / "hf", vocab_size=700, num_hidden_layers=2, tied=True)
    until, base = experiment_base(cfg(f"--model.base={local}"))
    assert until == "dataset" and (Path(base) / "evmlm_base.json").is_file()
    assert Path(base).parent == tmp_path / "cache" / "bases"
