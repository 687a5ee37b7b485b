"""Fine-tuning on real OpenZeppelin pairs with a tiny Llama: completion-only loss, LoRA, merge,
resume after a crash mid-epoch, QLoRA, full fine-tuning."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

from evmlm.config import FinetuneConfig
from evmlm.train.finetune import finetune

from .conftest import split

BASE_CFG = FinetuneConfig(
    method="lora",
    max_length=160,
    batch_size=4,
    max_steps=6,
    epochs=10,
    eval_steps=3,
    save_steps=3,
    logging_steps=1,
    warmup_steps=1,
    time_budget_s=None,
    early_stopping_patience=None,
    bf16=False,
    learning_rate=5e-3,
    max_eval_examples=4,
)


class Snapshot(TrainerCallback):
    """Copies of every parameter at train begin and end, with their requires_grad flags."""

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        self.before = {n: p.detach().clone() for n, p in model.named_parameters()}
        self.trainable = {n for n, p in model.named_parameters() if p.requires_grad}

    def on_train_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        self.after = {n: p.detach().clone() for n, p in model.named_parameters()}
        self.log_history = list(state.log_history)


def _run(cfg: FinetuneConfig, base: Path, pairs: list[dict[str, Any]], out: Path, **kw: Any):
    return finetune(
        cfg,
        base_model=base,
        train_records=split(pairs, "train"),
        eval_records=split(pairs, "validation"),
        out_dir=out,
        threads=None,
        **kw,
    )


def test_completion_only_loss_masks_the_prompt(
    tmp_path: Path, tiny_base: Path, tokenizer: Any, pairs: list[dict[str, Any]]
) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from evmlm.train.data import to_sft_examples
    from evmlm.train.finetune import sft_config

    ex = to_sft_examples(split(pairs, "train")[:4], tokenizer, 160)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(str(tiny_base)),
        args=sft_config(BASE_CFG, tmp_path / "sft", max_steps=1),
        train_dataset=Dataset.from_list(ex.rows),
        eval_dataset=Dataset.from_list(ex.rows[:1]),
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(ex.rows))])
    for row, ids, labels in zip(ex.rows, batch["input_ids"], batch["labels"]):
        n_prompt = len(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
        assert (labels[:n_prompt] == -100).all()  # no loss on the prompt
        supervised = ids[labels != -100].tolist()
        assert (
            tokenizer.decode(supervised) == row["completion"] + tokenizer.eos_token
        )  # loss exactly on completion + EOS
        assert labels[n_prompt].item() == ids[n_prompt].item()


def test_lora_trains_only_adapter_then_reloads_and_merges(
    tmp_path: Path, tiny_base: Path, pairs: list[dict[str, Any]]
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from evmlm.train import load_for_inference

    snap = Snapshot()
    r = _run(
        replace(BASE_CFG, lora_targets="attention"),
        tiny_base,
        pairs,
        tmp_path / "ft",
        callbacks=[snap],
    )
    assert r.steps == 6 and r.adapter_dir is not None
    # only LoRA A/B matrices required grad, and only they moved
    assert snap.trainable and all(".lora_A." in n or ".lora_B." in n for n in snap.trainable)
    assert not any(n for n in snap.trainable if "mlp" in n)  # attention group only: q/k/v/o
    assert any(not torch.equal(snap.before[n], snap.after[n]) for n in snap.trainable)
    assert all(
        torch.equal(snap.before[n], snap.after[n]) for n in snap.before if n not in snap.trainable
    )
    assert r.trainable_params < r.total_params / 5

    # the adapter reloads with PeftModel.from_pretrained on the saved base
    adapter_cfg = json.loads((r.adapter_dir / "adapter_config.json").read_text())
    assert Path(adapter_cfg["base_model_name_or_path"]) == tiny_base.resolve()
    assert sorted(adapter_cfg["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert (r.adapter_dir / "adapter_model.safetensors").is_file()
    peft_model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tiny_base)), str(r.adapter_dir)
    ).eval()
    merged, tok = load_for_inference(r.model_dir)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    ids = tok(split(pairs, "test")[0]["solidity"], return_tensors="pt", add_special_tokens=False)[
        "input_ids"
    ][:, :128]
    with torch.no_grad():
        a, b = peft_model(ids).logits, merged(ids).logits
        base_logits = AutoModelForCausalLM.from_pretrained(str(tiny_base))(ids).logits
    # merged = W + (alpha/r) BA: same logits as the adapter model within float32 rounding
    assert torch.allclose(a, b, atol=1e-4, rtol=0), (a - b).abs().max()
    assert not torch.allclose(a, base_logits, atol=1e-3)  # and the adapter did change the model
    # an adapter dir also loads for inference (merged on the fly)
    m2, _ = load_for_inference(r.adapter_dir)
    with torch.no_grad():
        assert torch.allclose(m2(ids).logits, b, atol=1e-4)
    # both know the length they were fine-tuned with (the prompt budget at inference)
    from evmlm.decompile.generation import trained_length

    assert trained_length(m2) == trained_length(merged) == BASE_CFG.max_length


class Crash(TrainerCallback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.global_step == self.at:
            raise KeyboardInterrupt(f"killed at step {self.at}")


def test_resume_after_kill_mid_epoch(
    tmp_path: Path, tiny_base: Path, pairs: list[dict[str, Any]]
) -> None:
    cfg = replace(BASE_CFG, max_steps=6, save_steps=2, eval_steps=3)
    # 29 train pairs / batch 4 = 8 steps per epoch: step 3 is mid-epoch, the last checkpoint is at 2
    with pytest.raises(KeyboardInterrupt):
        _run(cfg, tiny_base, pairs, tmp_path / "ft", callbacks=[Crash(3)])
    assert (tmp_path / "ft" / "checkpoints" / "checkpoint-2").is_dir()
    assert not (tmp_path / "ft" / "model").exists()  # nothing half-written
    snap = Snapshot()
    r = _run(cfg, tiny_base, pairs, tmp_path / "ft", callbacks=[snap])
    assert r.resumed_from and r.resumed_from.endswith("checkpoint-2")
    assert r.steps == 6
    steps = [h["step"] for h in snap.log_history if "loss" in h]
    assert steps == list(range(1, 7))  # one loss per step, no gap and no repeat across the kill
    assert [s for s, _ in r.eval_losses] == [0, 3, 6]
    assert (r.model_dir / "model.safetensors").is_file()


def test_qlora_trains_saves_adapter_and_uses_less_memory(
    tmp_path: Path, tiny_base: Path, pairs: list[dict[str, Any]]
) -> None:
    cfg = replace(BASE_CFG, max_steps=4, eval_steps=4, save_steps=4, bf16=True)
    lora = _run(cfg, tiny_base, pairs, tmp_path / "lora")
    qlora = _run(replace(cfg, method="qlora"), tiny_base, pairs, tmp_path / "qlora")
    assert qlora.steps == 4 and (qlora.adapter_dir / "adapter_model.safetensors").is_file()
    assert (qlora.model_dir / "model.safetensors").is_file()
    assert qlora.eval_losses[-1][1] < qlora.eval_losses[0][1]
    print(
        f"model memory: LoRA {lora.model_memory_bytes / 2**20:.2f} MiB, QLoRA {qlora.model_memory_bytes / 2**20:.2f} MiB"
    )
    assert qlora.model_memory_bytes < lora.model_memory_bytes
    info = json.loads((qlora.model_dir / "training_info.json").read_text())
    assert info["result"]["model_memory_bytes"] == qlora.model_memory_bytes


def test_full_finetune_lowers_eval_loss(
    tmp_path: Path, tiny_base: Path, pairs: list[dict[str, Any]]
) -> None:
    r = _run(
        replace(
            BASE_CFG, method="full", learning_rate=2e-3, max_steps=4, eval_steps=4, save_steps=4
        ),
        tiny_base,
        pairs,
        tmp_path / "full",
    )
    assert r.adapter_dir is None and r.trainable_params == r.total_params
    assert r.eval_losses[-1][1] < r.eval_losses[0][1]
    assert (r.model_dir / "model.safetensors").is_file() and (
        tmp_path / "full" / "loss_curve.png"
    ).is_file()
    assert not (tmp_path / "full" / "adapter").exists()


def test_bad_base_model_is_one_line_error(tmp_path: Path, pairs: list[dict[str, Any]]) -> None:
    from evmlm.train.inference import ModelLoadError

    with pytest.raises(ModelLoadError, match="model folder not found"):
        _run(BASE_CFG, tmp_path / "nope", pairs, tmp_path / "out")
    with pytest.raises(ModelLoadError, match="not a model folder"):
        _run(BASE_CFG, tmp_path, pairs, tmp_path / "out")


def test_qlora_gradients_survive_an_evaluation(tiny_base: Path) -> None:
    """bitsandbytes repacks 4-bit weights for CPU inference on the first eval pass and that layout has
    no autograd; evmlm keeps the trainable layout, so gradients after an eval equal those before it."""
    from peft import get_peft_model

    from evmlm.train.finetune import load_base_model, lora_config

    model = get_peft_model(
        load_base_model(str(tiny_base), "qlora"), lora_config(FinetuneConfig(lora_dropout=0.0))
    )
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.02)
    ids = torch.randint(6, 1000, (2, 32), generator=torch.Generator().manual_seed(0))
    grads = []
    for _ in range(2):
        model.zero_grad()
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(input_ids=ids, labels=ids).loss.backward()
        grads.append(
            next(
                p.grad.clone()
                for n, p in model.named_parameters()
                if "layers.0.self_attn.q_proj.lora_A" in n
            )
        )
        model.eval()
        with torch.no_grad():
            model(input_ids=ids)  # an evaluation pass between the two training steps
    assert grads[0].abs().max() > 0
    assert torch.equal(grads[0], grads[1])
