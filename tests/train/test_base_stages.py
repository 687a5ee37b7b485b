"""The chain with a pretrained ``model.base`` (a local HF folder standing in for SmolLM2):
tokenizer = the base's, pretrain skipped, cpt continues it, finetune starts from cpt/model and
trains the added tokens' rows; ``finetune.backend=unsloth`` stops in one line without a GPU."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from evmlm.config import load_config
from evmlm.pipeline import STAGES, run_stage
from tests.train.test_stage import _run_dir

SMALL = [
    "--cpt.enabled=true",
    "--cpt.context_length=64",
    "--cpt.batch_size=2",
    "--cpt.max_steps=3",
    "--cpt.eval_steps=3",
    "--cpt.save_steps=3",
    "--cpt.eval_batches=1",
    "--cpt.val_fraction=0.2",
    "--cpt.lora_r=4",
    "--cpt.include_tac=false",
    "--finetune.max_steps=2",
    "--finetune.max_length=160",
    "--finetune.eval_steps=2",
    "--finetune.save_steps=2",
    "--finetune.max_eval_examples=2",
    "--finetune.early_stopping_patience=null",
    "--run.threads=2",
]


@pytest.fixture(scope="module")
def foreign_base(
    tmp_path_factory: pytest.TempPathFactory, save_hf_base: Callable[..., Path]
) -> Path:
    """A tiny tied Llama whose BPE knows only ``<|endoftext|>`` of evmlm's tokens."""
    return save_hf_base(
        tmp_path_factory.mktemp("foreign_base"), vocab_size=700, num_hidden_layers=2, tied=True
    )


def test_pretrained_base_chain(
    tmp_path: Path, foreign_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from safetensors.torch import load_file

    monkeypatch.setenv("EVMLM_CACHE_DIR", str(tmp_path / "cache"))
    run = _run_dir(tmp_path)
    cfg = load_config(
        None,
        [*SMALL, f"--model.base={foreign_base}", f"--run.runs_dir={tmp_path / 'runs'}"]
        + ["--run.name=t"],
    )
    stages = {s.name: s for s in STAGES}
    recs = {
        n: run_stage(cfg, stages[n], run)["summary"]
        for n in ("tokenizer", "pretrain", "cpt", "finetune")
    }
    assert recs["tokenizer"]["vocab_size"] == 706  # 700 + the 6 evmlm tokens it lacked
    assert recs["pretrain"]["enabled"] is False and "is pretrained" in recs["pretrain"]["line"]
    assert not (run / "pretrain" / "model").exists()
    c = recs["cpt"]
    assert c["steps"] == 3 and c["val_loss_before"] > 0 and c["val_loss_after"] > 0
    assert (run / "cpt" / "model" / "evmlm_base.json").is_file()
    info = json.loads((run / "finetune" / "model" / "training_info.json").read_text())
    assert info["base_model"] == str((run / "cpt" / "model").resolve())
    # LoRA fine-tuning trained the added tokens' embedding rows (trainable tokens) and only those
    added = sorted(
        json.loads((run / "cpt" / "model" / "evmlm_base.json").read_text())["added_tokens"].values()
    )
    before = load_file(str(run / "cpt" / "model" / "model.safetensors"))[
        "model.embed_tokens.weight"
    ]
    after = load_file(str(run / "finetune" / "model" / "model.safetensors"))[
        "model.embed_tokens.weight"
    ]
    changed = [i for i in range(before.shape[0]) if not torch.equal(before[i], after[i])]
    assert changed and set(changed) <= set(added)


def test_unsloth_backend_stops_in_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from evmlm.cli import run_cli

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the CPU error path does not apply")
    rc = run_cli(
        ["run", f"--run.runs_dir={tmp_path}", "--run.name=u", "--finetune.backend=unsloth"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "needs an NVIDIA GPU" in err[0]
    assert not (tmp_path / "u").exists()  # nothing was done


def test_finetune_straight_from_a_tied_converted_base(
    tmp_path: Path, foreign_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No CPT: LoRA + trainable tokens on the tied base itself (PEFT wraps the tied LM head; TRL's
    fused LM head must still read it)."""
    monkeypatch.setenv("EVMLM_CACHE_DIR", str(tmp_path / "cache"))
    run = _run_dir(tmp_path)
    flags = [a for a in SMALL if not a.startswith("--cpt.")]
    cfg = load_config(
        None,
        [*flags, f"--model.base={foreign_base}", f"--run.runs_dir={tmp_path / 'runs'}"]
        + ["--run.name=t"],
    )
    stages = {s.name: s for s in STAGES}
    recs = {n: run_stage(cfg, stages[n], run)["summary"] for n in ("tokenizer", "finetune")}
    ft = recs["finetune"]
    assert ft["steps"] == 2 and ft["eval_loss"] > 0
    info = json.loads((run / "finetune" / "model" / "training_info.json").read_text())
    assert info["base_model"].startswith(str(tmp_path / "cache"))
