"""From-scratch pretraining ("solGPT"): a Llama size preset on packed Solidity (+ TAC) sequences.

One ``transformers.Trainer`` with the nanoGPT essentials as settings and callbacks: token files
read through ``numpy.memmap`` (:mod:`evmlm.train.data`), AdamW (β = 0.9, 0.95 as in nanoGPT /
GPT-3, Brown et al. 2020 §C), linear warmup then cosine decay to ``min_lr_ratio`` × lr,
gradient clipping, a checkpoint and a log line every N steps, validation loss on held-out
Solidity files, a loss-curve PNG, TensorBoard, resume from the newest checkpoint, bf16
autocast on CPU.

Output folder layout: ``checkpoints/checkpoint-<step>/``, ``tb/`` (TensorBoard),
``loss_curve.png``, ``model/`` (safetensors weights, tokenizer, ``training_info.json``).
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from evmlm import atomic
from evmlm.config import PretrainConfig, to_dict
from evmlm.models import build_model, get_preset
from evmlm.train.data import PackedBlocks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainResult:
    """What a pretraining run produced. Losses are cross-entropy in nats/token."""

    model_dir: Path
    steps: int
    n_params: int
    train_loss: float | None
    val_loss: float | None
    tokens_per_second: float  # training tokens / training wall seconds (this invocation)
    seconds: float
    resumed_from: str | None

    @property
    def val_perplexity(self) -> float | None:
        return math.exp(self.val_loss) if self.val_loss is not None else None

    def line(self) -> str:
        val = (
            f"val loss {self.val_loss:.3f} (ppl {self.val_perplexity:.1f})"
            if self.val_loss is not None
            else "no val loss"
        )
        return f"{self.n_params / 1e6:.1f}M params, {self.steps} steps, {val}, {self.tokens_per_second:,.0f} tok/s"


def training_arguments(
    cfg: PretrainConfig, output_dir: Path, *, seed: int = 0
):  # -> TrainingArguments
    """The Trainer settings of a pretraining run (also used by benchmarks/train_throughput.py)."""
    from transformers import TrainingArguments

    from evmlm.train.arguments import shared_trainer_kwargs

    return TrainingArguments(
        **shared_trainer_kwargs(cfg, output_dir, seed=seed),
        adam_beta1=0.9,
        adam_beta2=0.95,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": cfg.min_lr_ratio},
        max_steps=cfg.max_steps,
    )


def pretrain(
    cfg: PretrainConfig,
    *,
    tokenizer: Any,
    data_dir: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    threads: int | None = None,
    resume: bool = True,
    info: dict[str, Any] | None = None,
    callbacks: Sequence[Any] = (),
) -> PretrainResult:
    """Pretrain a ``cfg.preset`` Llama on ``data_dir``/train.bin, validating on val.bin.

    ``tokenizer``: the run's PreTrainedTokenizerFast (vocabulary size, EOS/PAD ids; saved with
    the model). ``resume``: continue from the newest checkpoint under ``out_dir/checkpoints``
    when there is one. ``info``: extra JSON (resolved config, data fingerprint) saved in
    ``model/training_info.json``. Raises TrainingDataError when the token files are missing or
    shorter than one sequence; UnknownPresetError for an unknown preset.
    """
    import torch
    from transformers import Trainer
    from transformers.trainer_utils import get_last_checkpoint

    from evmlm.train.callbacks import standard_callbacks

    if threads:
        torch.set_num_threads(threads)
    out = Path(out_dir)
    preset = get_preset(cfg.preset)
    ctx_len = cfg.context_length or preset.context_length
    data = Path(data_dir)
    train_ds = PackedBlocks(data / "train.bin", ctx_len)
    val_ds = PackedBlocks(data / "val.bin", ctx_len, max_blocks=cfg.eval_batches * cfg.batch_size)
    if ctx_len > preset.context_length:
        from dataclasses import replace

        preset = replace(preset, context_length=ctx_len)
    model = build_model(
        preset,
        len(tokenizer),
        seed=seed,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    args = training_arguments(cfg, out / "checkpoints", seed=seed)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * ctx_len * args.world_size
    cbs = standard_callbacks(
        tb_dir=out / "tb",
        curve_path=out / "loss_curve.png",
        title=f"pretrain {cfg.preset} ({model.num_parameters() / 1e6:.1f}M params)",
        tokens_per_step=tokens_per_step,
        time_budget_s=cfg.time_budget_s,
        early_stopping_patience=cfg.early_stopping_patience,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        callbacks=[*cbs, *callbacks],
    )
    last = (
        get_last_checkpoint(str(out / "checkpoints"))
        if resume and (out / "checkpoints").is_dir()
        else None
    )
    if last:
        log.info("resuming from %s", last)
    res = trainer.train(resume_from_checkpoint=last)
    steps = trainer.state.global_step
    val_loss = next(
        (
            r["eval_loss"]
            for r in reversed(trainer.state.log_history)
            if "eval_loss" in r and r.get("step") == steps
        ),
        None,
    )
    if val_loss is None:
        val_loss = float(trainer.evaluate()["eval_loss"])
    train_losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    steps_this_run = steps - (int(Path(last).name.split("-")[-1]) if last else 0)
    runtime = float(res.metrics.get("train_runtime", 0.0)) or 1e-9
    result = PretrainResult(
        model_dir=out / "model",
        steps=steps,
        n_params=model.num_parameters(),
        train_loss=train_losses[-1] if train_losses else None,
        val_loss=float(val_loss),
        tokens_per_second=steps_this_run * tokens_per_step / runtime,
        seconds=runtime,
        resumed_from=last,
    )
    if not trainer.is_world_process_zero():
        return result  # the main process saves
    save_model(
        trainer,
        tokenizer,
        out / "model",
        {
            **(info or {}),
            "pretrain": to_dict(cfg),
            "context_length": ctx_len,
            "result": result_dict(result),
        },
    )
    from evmlm.train.callbacks import plot_loss_curve

    plot_loss_curve(trainer.state.log_history, out / "loss_curve.png", f"pretrain {cfg.preset}")
    log.info("pretrain: %s", result.line())
    return result


def result_dict(r: PretrainResult) -> dict[str, Any]:
    return {
        "steps": r.steps,
        "n_params": r.n_params,
        "train_loss": r.train_loss,
        "val_loss": r.val_loss,
        "val_perplexity": r.val_perplexity,
        "tokens_per_second": round(r.tokens_per_second, 1),
        "seconds": round(r.seconds, 1),
        "resumed_from": r.resumed_from,
    }


def save_model(trainer: Any, tokenizer: Any, model_dir: Path, info: dict[str, Any]) -> None:
    """Save weights (safetensors), tokenizer and ``training_info.json`` into ``model_dir``.

    Written into a temporary sibling folder that replaces ``model_dir`` at the end, so a crash
    never leaves a half-written model.
    """
    tmp = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    atomic.write_json(tmp / "training_info.json", info)
    for junk in tmp.glob("training_args.bin"):
        junk.unlink()  # pickled; safetensors/JSON only
    shutil.rmtree(model_dir, ignore_errors=True)
    tmp.rename(model_dir)
