"""The tokenizer -> pretrain -> finetune stages through the real run chain (evmlm.pipeline), on a
run folder whose corpus and dataset stages hold the OpenZeppelin fixture."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from evmlm.config import load_config
from evmlm.pipeline import STAGES, is_current, run_stage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "train"

TINY = [
    "--tokenizer.vocab_size=1024",
    "--pretrain.preset=tiny",
    "--pretrain.context_length=64",
    "--pretrain.batch_size=4",
    "--pretrain.max_steps=6",
    "--pretrain.eval_steps=3",
    "--pretrain.save_steps=3",
    "--pretrain.eval_batches=1",
    "--pretrain.warmup_steps=1",
    "--pretrain.val_fraction=0.2",
    "--pretrain.logging_steps=2",
    "--finetune.max_steps=3",
    "--finetune.max_length=160",
    "--finetune.eval_steps=3",
    "--finetune.save_steps=3",
    "--finetune.logging_steps=1",
    "--finetune.max_eval_examples=4",
    "--finetune.early_stopping_patience=null",
    "--run.threads=2",
]


def _run_dir(tmp: Path) -> Path:
    run = tmp / "runs" / "t"
    (run / "corpus").mkdir(parents=True)
    (run / "dataset").mkdir(parents=True)
    lines = []
    for p in sorted((FIXTURES / "sources").glob("*.sol")):
        data = p.read_bytes()
        lines.append(
            json.dumps(
                {
                    "path": "@openzeppelin/contracts/" + p.name.replace("__", "/"),
                    "file": str(p),
                    "package": "@openzeppelin/contracts",
                    "version": "5.0.2",
                    "license": "MIT",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "pragma": "^0.8.20",
                }
            )
        )
    (run / "corpus" / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (run / "dataset" / "pairs.jsonl").write_text((FIXTURES / "pairs.jsonl").read_text())
    return run


def test_training_stages_run_then_skip(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    cfg = load_config(None, [*TINY, f"--run.runs_dir={tmp_path / 'runs'}", "--run.name=t"])
    stages = {s.name: s for s in STAGES}
    recs = {
        name: run_stage(cfg, stages[name], run) for name in ("tokenizer", "pretrain", "finetune")
    }

    assert (run / "tokenizer" / "tokenizer.json").is_file()
    assert (
        recs["tokenizer"]["summary"]["tac_functions"] == 29
        and recs["tokenizer"]["summary"]["solidity_files"] == 25
    )
    pre = recs["pretrain"]["summary"]
    assert pre["steps"] == 6 and pre["val_loss"] > 0 and pre["train_tokens"] > pre["val_tokens"] > 0
    assert (run / "pretrain" / "model" / "model.safetensors").is_file()
    ft = recs["finetune"]["summary"]
    assert ft["method"] == "lora" and ft["steps"] == 3 and ft["n_train"] + ft["n_dropped"] >= 29
    assert (run / "finetune" / "adapter" / "adapter_model.safetensors").is_file()
    info = json.loads((run / "finetune" / "model" / "training_info.json").read_text())
    assert (
        info["dataset_fingerprint"]
        == hashlib.sha256((FIXTURES / "pairs.jsonl").read_bytes()).hexdigest()
    )
    assert info["config"]["finetune"]["method"] == "lora"
    assert "line" in ft and "eval loss" in ft["line"]

    # a second run of the chain skips all three; a changed setting reruns only from there
    for name in ("tokenizer", "pretrain", "finetune"):
        assert is_current(cfg, stages[name], run)
    cfg2 = load_config(
        None,
        [
            *TINY,
            f"--run.runs_dir={tmp_path / 'runs'}",
            "--run.name=t",
            "--finetune.lora_targets=attention",
        ],
    )
    assert is_current(cfg2, stages["pretrain"], run) and not is_current(
        cfg2, stages["finetune"], run
    )
    # both training stages read run.seed: a new seed reruns them (the tokenizer does not read it)
    cfg3 = load_config(
        None, [*TINY, f"--run.runs_dir={tmp_path / 'runs'}", "--run.name=t", "--run.seed=1"]
    )
    assert is_current(cfg3, stages["tokenizer"], run)
    assert not is_current(cfg3, stages["pretrain"], run) and not is_current(
        cfg3, stages["finetune"], run
    )
    assert (
        info["config"]["run.seed"] == 0 and "run" not in info["config"]
    )  # the model records what the stage read
