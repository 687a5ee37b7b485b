"""Continued pretraining (CPT) of a pretrained base on the corpus: the PatchGen recipe on a CPU.

PatchGen continues the pretraining of an existing model on raw domain text before fine-tuning
it on the task: LoRA (Hu et al. 2021) on every linear layer **and** on ``embed_tokens`` /
``lm_head``, rank-stabilised scaling (rsLoRA: alpha / sqrt(r) instead of alpha / r; Kalajdzievski
2023, arXiv 2312.03732), a separate smaller learning rate for the embeddings (5e-5 for the rest,
1e-5 for the embeddings, as unsloth's ``embedding_learning_rate``), warmup ratio 0.1 then linear
decay, seed 3407. Here: one ``transformers.Trainer`` over packed sequences of the corpus's
Solidity (+ the dataset's train-split TAC) read from token files (:class:`PackedBlocks`), the
optimizer built with two parameter groups and handed to the Trainer (``optimizers=``), so the
Trainer's linear schedule with warmup scales both groups and its checkpoints resume them.

Tied embeddings: SmolLM2 (like Llama 3.2) shares one matrix between ``embed_tokens`` and
``lm_head``. Separate LoRA deltas on the two cannot be merged back into one shared matrix, so
with ``cpt.embeddings`` the output matrix is first made a copy of its own (untied;
+vocab x hidden parameters in the merged model). ``cpt.method=full`` trains every weight
(embeddings at their own learning rate; tying kept).

Output folder layout: ``data/{train,val}.bin``, ``checkpoints/``, ``tb/``, ``loss_curve.png``,
``adapter/`` (LoRA), ``model/`` (merged plain model + tokenizer + ``training_info.json``; what
fine-tuning starts from), ``metrics.json`` (held-out Solidity loss before and after).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from evmlm import atomic
from evmlm.config import CptConfig, to_dict
from evmlm.train.data import PackedBlocks
from evmlm.train.stage import input_digest

__all__ = ["cpt", "input_digest", "run_cpt_stage"]

log = logging.getLogger(__name__)

EMBEDDING_MODULES = ("embed_tokens", "lm_head")


@dataclass(frozen=True)
class CptResult:
    """What a CPT run produced. Losses: cross-entropy in nats/token on held-out Solidity."""

    model_dir: Path
    method: str
    steps: int
    val_loss_before: float
    val_loss_after: float
    trainable_params: int
    total_params: int
    tokens_per_second: float
    seconds: float
    resumed_from: str | None

    def line(self) -> str:
        return (
            f"{self.method}: {self.steps} steps, held-out Solidity loss {self.val_loss_before:.3f}"
            f" -> {self.val_loss_after:.3f} (ppl {math.exp(self.val_loss_before):.2f} ->"
            f" {math.exp(self.val_loss_after):.2f}), {self.trainable_params / 1e6:.2f}M of"
            f" {self.total_params / 1e6:.1f}M params trained, {self.tokens_per_second:,.0f} tok/s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "steps": self.steps,
            "val_loss_before": self.val_loss_before,
            "val_loss_after": self.val_loss_after,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "tokens_per_second": round(self.tokens_per_second, 1),
            "seconds": round(self.seconds, 1),
            "resumed_from": self.resumed_from,
        }


def untie_embeddings(model: Any) -> bool:
    """Give ``lm_head`` its own copy of a tied embedding matrix; True when it was tied."""
    import torch

    emb, out = model.get_input_embeddings(), model.get_output_embeddings()
    if out is None or out.weight.data_ptr() != emb.weight.data_ptr():
        return False
    out.weight = torch.nn.Parameter(emb.weight.detach().clone())
    model.config.tie_word_embeddings = False
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    if text is not None:
        text.tie_word_embeddings = False
    return True


def lora_config(cfg: CptConfig):  # -> peft.LoraConfig
    """LoRA on ``cfg.lora_targets`` (+ ``embed_tokens`` / ``lm_head`` with ``cfg.embeddings``),
    rsLoRA scaling."""
    from peft import LoraConfig

    from evmlm.train.finetune import LORA_TARGETS

    targets = [] if cfg.lora_targets == "none" else list(LORA_TARGETS[cfg.lora_targets])
    if cfg.embeddings:
        targets += list(EMBEDDING_MODULES)
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        use_rslora=True,
        bias="none",
        task_type="CAUSAL_LM",
    )


def is_embedding_param(name: str) -> bool:
    """Whether a (PEFT-wrapped) parameter belongs to ``embed_tokens`` or ``lm_head``."""
    return any(m in name.split(".") for m in EMBEDDING_MODULES)


def param_groups(model: Any, cfg: CptConfig) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: trainable embedding / LM-head parameters at
    ``cfg.embedding_learning_rate``, every other trainable parameter at ``cfg.learning_rate``.
    Raises ValueError when nothing is trainable."""
    emb, rest, seen = [], [], set()
    for n, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (emb if is_embedding_param(n) else rest).append(p)
    if not emb and not rest:
        raise ValueError("cpt: no trainable parameters")
    groups = []
    if rest:
        groups.append({"params": rest, "lr": cfg.learning_rate, "name": "body"})
    if emb:
        groups.append({"params": emb, "lr": cfg.embedding_learning_rate, "name": "embeddings"})
    return groups


def resolve_optim(cfg: CptConfig) -> str:
    """``cfg.optim`` with ``auto`` resolved: 8-bit AdamW (bitsandbytes) on CUDA, torch AdamW on
    the CPU (bitsandbytes' CPU 8-bit AdamW works but measured 3.8x slower per step than torch's
    on 4M parameters, and the CPU does not need the memory saving; docs/base-models.md)."""
    import torch

    if cfg.optim != "auto":
        return cfg.optim
    return "adamw_bnb_8bit" if torch.cuda.is_available() else "adamw_torch"


def training_arguments(cfg: CptConfig, output_dir: Path):  # -> TrainingArguments
    """Trainer settings: linear decay after ``warmup_ratio`` of the steps, seed ``cfg.seed``."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1): a share of max_steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        optim=resolve_optim(cfg),
        max_steps=cfg.max_steps,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        bf16=cfg.bf16,
        use_cpu=not torch.cuda.is_available(),
        dataloader_pin_memory=torch.cuda.is_available(),
        report_to="none",
        seed=cfg.seed,
    )


def prepare_model(cfg: CptConfig, base: str | Path) -> Any:
    """The base loaded for ``cfg.method`` and wrapped for training (PEFT LoRA, or all weights)."""
    from evmlm.train.finetune import load_base_model

    model = load_base_model(str(base), "qlora" if cfg.method == "qlora" else "full")
    if cfg.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import get_peft_model

    if cfg.embeddings:
        untie_embeddings(model)
    return get_peft_model(model, lora_config(cfg))


def cpt(
    cfg: CptConfig,
    *,
    base_model: str | Path,
    tokenizer: Any,
    data_dir: str | Path,
    out_dir: str | Path,
    threads: int | None = None,
    resume: bool = True,
    info: dict[str, Any] | None = None,
    callbacks: Sequence[Any] = (),
) -> CptResult:
    """Continue pretraining ``base_model`` on ``data_dir``/train.bin, validating on val.bin.

    ``tokenizer``: the base's tokenizer (saved with the merged model). ``resume``: continue
    from the newest checkpoint under ``out_dir/checkpoints``. The held-out loss before training
    is measured once and kept in ``out_dir/loss_before.json`` (a resumed run reuses it).
    Raises TrainingDataError for missing or too-short token files, QLoRAUnsupportedError when
    ``cfg.method=qlora`` cannot run here.
    """
    import torch
    from transformers import Trainer
    from transformers.trainer_utils import get_last_checkpoint

    from evmlm.train.callbacks import plot_loss_curve, standard_callbacks

    if threads:
        torch.set_num_threads(threads)
    out, data = Path(out_dir), Path(data_dir)
    if cfg.method == "qlora":
        from evmlm.train.finetune import check_qlora_platform

        check_qlora_platform(str(base_model))
    train_ds = PackedBlocks(data / "train.bin", cfg.context_length)
    val_ds = PackedBlocks(
        data / "val.bin", cfg.context_length, max_blocks=cfg.eval_batches * cfg.batch_size
    )
    torch.manual_seed(cfg.seed)
    model = prepare_model(cfg, base_model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    args = training_arguments(cfg, out / "checkpoints")
    opt_cls, opt_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    opt_kwargs = {k: v for k, v in opt_kwargs.items() if k != "lr"}
    groups = [{**g, "weight_decay": cfg.weight_decay} for g in param_groups(model, cfg)]
    optimizer = opt_cls(groups, lr=cfg.learning_rate, **opt_kwargs)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.context_length * args.world_size
    cbs = standard_callbacks(
        tb_dir=out / "tb",
        curve_path=out / "loss_curve.png",
        title=f"cpt {cfg.method} (held-out Solidity)",
        tokens_per_step=tokens_per_step,
        time_budget_s=cfg.time_budget_s,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        callbacks=[*cbs, *callbacks],
        optimizers=(optimizer, None),
    )
    last = (
        get_last_checkpoint(str(out / "checkpoints"))
        if resume and (out / "checkpoints").is_dir()
        else None
    )
    before_file = out / "loss_before.json"
    if last and before_file.is_file():
        before = float(json.loads(before_file.read_text())["val_loss"])
        log.info("resuming from %s", last)
    else:
        before = float(trainer.evaluate()["eval_loss"])
        atomic.write_json(before_file, {"val_loss": before})
    res = trainer.train(resume_from_checkpoint=last)
    steps = trainer.state.global_step
    after = float(trainer.evaluate()["eval_loss"])
    steps_this_run = steps - (int(Path(last).name.split("-")[-1]) if last else 0)
    runtime = float(res.metrics.get("train_runtime", 0.0)) or 1e-9
    result = CptResult(
        model_dir=out / "model",
        method=cfg.method,
        steps=steps,
        val_loss_before=before,
        val_loss_after=after,
        trainable_params=trainable,
        total_params=total,
        tokens_per_second=steps_this_run * tokens_per_step / runtime,
        seconds=runtime,
        resumed_from=last,
    )
    if not trainer.is_world_process_zero():
        return result
    full_info = {
        **(info or {}),
        "base_model": str(base_model),
        "cpt": to_dict(cfg),
        "result": result.to_dict(),
    }
    plot_loss_curve(trainer.state.log_history, out / "loss_curve.png", f"cpt {cfg.method}")
    if cfg.method == "full":
        from evmlm.train.pretrain import save_model

        save_model(trainer, tokenizer, out / "model", full_info)
    else:
        from evmlm.train.finetune import _save_adapter

        _save_adapter(trainer.model, tokenizer, out / "adapter", full_info)
        merged = (
            trainer.model.merge_and_unload()
            if cfg.method == "lora"
            else _merge_into_float(cfg, base_model, out / "adapter")
        )
        _save_merged(merged, tokenizer, out / "model", full_info)
    rec = Path(base_model) / "evmlm_base.json"
    if rec.is_file():
        shutil.copyfile(rec, out / "model" / "evmlm_base.json")
    log.info("cpt: %s", result.line())
    return result


def _merge_into_float(cfg: CptConfig, base: str | Path, adapter_dir: Path) -> Any:
    """A QLoRA adapter merged into the float32 base (untied as in training)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    if cfg.embeddings:
        untie_embeddings(model)
    return PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()


def _save_merged(model: Any, tokenizer: Any, model_dir: Path, info: dict[str, Any]) -> None:
    tmp = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    atomic.write_json(tmp / "training_info.json", info)
    shutil.rmtree(model_dir, ignore_errors=True)
    tmp.rename(model_dir)


# ---------------------------------------------------------------------------------------------


def run_cpt_stage(ctx: Any) -> dict[str, Any]:
    """The ``cpt`` stage: token files from the corpus (Solidity files held out by hash for
    validation, train-split TAC added to train), then :func:`cpt` from the run's start model
    (:func:`evmlm.train.stage.start_model_dir`); merged model in ``cpt/model``."""
    from evmlm.train.data import TrainingDataError, is_heldout, write_token_file
    from evmlm.train.stage import (
        _iter_sources,
        _train_tac,
        clear_stale_checkpoints,
        start_model_dir,
        write_lm_summary,
    )
    from evmlm.train.threads import effective_threads
    from evmlm.train.tokenizer import load_tokenizer

    cfg = ctx.config.cpt
    if not cfg.enabled:
        return {"line": "disabled (cpt.enabled=false)", "enabled": False}
    out = ctx.stage_dir
    base = start_model_dir(ctx)
    tokenizer = load_tokenizer(base)
    train_texts: list[str] = []
    val_texts: list[str] = []
    for s in _iter_sources(ctx.dir_of("corpus")):
        (val_texts if is_heldout(s.sha256, cfg.val_fraction) else train_texts).append(s.text)
    if not val_texts and len(train_texts) > 1:
        val_texts.append(train_texts.pop())
    if not train_texts:
        raise TrainingDataError(
            f"{ctx.dir_of('corpus')}: no Solidity files to continue pretraining on;"
            " run the corpus stage first"
        )
    n_tac = 0
    if cfg.include_tac:
        tac = _train_tac(ctx.dir_of("dataset"))
        n_tac = len(tac)
        train_texts.extend(tac)
    data = out / "data"
    n_train = write_token_file(train_texts, tokenizer, data / "train.bin")
    n_val = write_token_file(val_texts, tokenizer, data / "val.bin")
    base_rec = base / "evmlm_base.json"
    key = {
        "cpt": to_dict(cfg),
        "base": (
            json.loads(base_rec.read_text()).get("source_sha256")
            if base_rec.is_file()
            else atomic.sha256_file(base / "model.safetensors")
        ),
        "train": atomic.sha256_file(data / "train.bin"),
    }
    clear_stale_checkpoints(out, key)
    res = cpt(
        cfg,
        base_model=base,
        tokenizer=tokenizer,
        data_dir=data,
        out_dir=out,
        threads=effective_threads(ctx.threads),
        resume=True,
        info={"config": ctx.declared(), "data": {"train_tokens": n_train, "val_tokens": n_val}},
    )
    return write_lm_summary(out, res.line(), res.to_dict(), n_train, n_val, n_tac)
