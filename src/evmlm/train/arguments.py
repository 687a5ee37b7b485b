"""The Trainer settings that pretraining and fine-tuning share (both are HF Trainer runs).

Both config sections carry the same trainer fields (checked by ``config._check_trainer``);
this turns them into ``TrainingArguments`` / ``SFTConfig`` keyword arguments in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evmlm.config import FinetuneConfig, PretrainConfig


def shared_trainer_kwargs(
    cfg: PretrainConfig | FinetuneConfig, output_dir: Path, *, seed: int
) -> dict[str, Any]:
    """Keyword arguments common to both runs: batch, optimiser, logging/eval/save cadence,
    early-stopping bookkeeping, bf16 and device (``use_cpu`` when there is no GPU)."""
    import torch

    early = cfg.early_stopping_patience is not None
    return dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss" if early else None,
        greater_is_better=False if early else None,
        bf16=cfg.bf16,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=cfg.dataloader_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        report_to="none",
        seed=seed,
    )
