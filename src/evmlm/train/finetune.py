"""Fine-tuning TAC -> Solidity: full, LoRA or QLoRA, loss on the completion only.

One TRL ``SFTTrainer`` on prompt/completion rows (:func:`evmlm.train.data.to_sft_examples`,
format :mod:`evmlm.train.prompt`); with such rows TRL masks the prompt out of the loss
(``completion_only_loss``). LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large
Language Models") through ``peft`` on named target groups; QLoRA (Dettmers et al. 2023) loads
the base in 4-bit NF4 with double quantisation and bf16 compute through ``bitsandbytes``, then
``peft.prepare_model_for_kbit_training``.

Output folder layout: ``checkpoints/``, ``tb/``, ``loss_curve.png``, ``adapter/`` (LoRA and
QLoRA: adapter weights + tokenizer), ``lora_phases.json`` (with ``finetune.lora_phases``),
``gradient_norms.*`` (with ``finetune.grad_norm_steps``, :mod:`evmlm.train.grad_norms`),
``model/`` (always: a merged plain model with its tokenizer and ``training_info.json``,
loadable by :func:`evmlm.train.load_for_inference`).
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from evmlm import atomic
from evmlm.config import FinetuneConfig, to_dict
from evmlm.errors import EvmlmError
from evmlm.train.data import TrainingDataError, to_sft_examples
from evmlm.train.prompt import SPECIAL_TOKENS

log = logging.getLogger(__name__)

#: LoRA target groups by Llama module name; reused by phased-LoRA schedules.
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mlp": ("gate_proj", "up_proj", "down_proj"),
}
LORA_TARGETS["all"] = LORA_TARGETS["attention"] + LORA_TARGETS["mlp"]


class QLoRAUnsupportedError(EvmlmError):
    """bitsandbytes 4-bit quantisation does not work on this platform."""


def check_qlora_platform(base: str | None = None) -> None:
    """Quantise and run one small NF4 layer; raise QLoRAUnsupportedError if that fails.

    On CPU, bitsandbytes' 4-bit kernels need every quantised layer's input size to be a multiple
    of the NF4 block size (64): checked on ``base``'s config (hidden and intermediate size).
    Called before any data or model work so an unsupported platform fails in a second.
    """
    import torch

    if base is not None and not torch.cuda.is_available():
        from transformers import AutoConfig

        c = AutoConfig.from_pretrained(base)
        bad = {
            k: getattr(c, k) for k in ("hidden_size", "intermediate_size") if getattr(c, k, 0) % 64
        }
        if bad:
            raise QLoRAUnsupportedError(
                f"finetune.method=qlora: {base} has {bad}; bitsandbytes' CPU NF4 kernels need multiples of 64; use --finetune.method=lora"
            )
    try:
        import bitsandbytes as bnb
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        layer = bnb.nn.Linear4bit(
            64, 64, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4"
        ).to(device)
        layer(torch.randn(2, 64, dtype=torch.bfloat16, device=device))
    except Exception as e:  # noqa: BLE001 - any failure means the platform cannot do it
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise QLoRAUnsupportedError(
            f"finetune.method=qlora: bitsandbytes 4-bit NF4 does not work here ({first}); use --finetune.method=lora"
        ) from e


@dataclass
class FinetuneResult:
    """What a fine-tuning run produced. Losses are cross-entropy in nats/token of the completion."""

    method: str
    model_dir: Path
    adapter_dir: Path | None
    steps: int
    epochs: float
    eval_losses: list[tuple[int, float]]  # (step, eval loss), in step order, including step 0
    trainable_params: int
    total_params: int
    model_memory_bytes: int  # model.get_memory_footprint() as trained (4-bit for QLoRA)
    tokens_per_second: float
    seconds: float
    n_train: int
    n_eval: int
    n_truncated: int
    n_dropped: int
    resumed_from: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def eval_loss(self) -> float | None:
        return self.eval_losses[-1][1] if self.eval_losses else None

    def first_epoch_monotonic(self, steps_per_epoch: int) -> bool:
        """Whether eval loss decreased at every evaluation within the first epoch."""
        first = [loss for s, loss in self.eval_losses if s <= steps_per_epoch]
        return all(b < a for a, b in zip(first, first[1:]))

    def line(self) -> str:
        ev = (
            f"eval loss {self.eval_losses[0][1]:.3f} -> {self.eval_loss:.3f}"
            if self.eval_losses
            else "no eval"
        )
        return (
            f"{self.method}: {self.steps} steps ({self.epochs:.2f} epochs) on {self.n_train} pairs, {ev}, "
            f"{self.trainable_params / 1e6:.2f}M of {self.total_params / 1e6:.2f}M params trained, "
            f"{self.model_memory_bytes / 2**20:.0f} MiB model, {self.tokens_per_second:,.0f} tok/s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "steps": self.steps,
            "epochs": self.epochs,
            "eval_losses": self.eval_losses,
            "eval_loss": self.eval_loss,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "model_memory_bytes": self.model_memory_bytes,
            "tokens_per_second": round(self.tokens_per_second, 1),
            "seconds": round(self.seconds, 1),
            "n_train": self.n_train,
            "n_eval": self.n_eval,
            "n_truncated": self.n_truncated,
            "n_dropped": self.n_dropped,
            "resumed_from": self.resumed_from,
            **self.extra,
        }


def _load_tokenizer(base: str, tokenizer_dir: str | Path | None) -> Any:
    from transformers import AutoTokenizer

    from evmlm.train.inference import ModelLoadError

    src = str(tokenizer_dir) if tokenizer_dir else base
    try:
        tok = AutoTokenizer.from_pretrained(src)
    except OSError as e:
        raise ModelLoadError(
            f"{src}: no tokenizer there; pass a model folder that has one (or this run's tokenizer)"
        ) from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _add_prompt_tokens(tokenizer: Any) -> list[int]:
    """Add the prompt format's special tokens to a foreign (hub) tokenizer; returns the new ids."""
    missing = [t for t in SPECIAL_TOKENS[2:] if t not in tokenizer.get_vocab()]
    if not missing:
        return []
    tokenizer.add_special_tokens(
        {"additional_special_tokens": missing}, replace_extra_special_tokens=False
    )
    return tokenizer.convert_tokens_to_ids(missing)


def _converted_token_ids(base: str) -> list[int]:
    """The ids of the tokens evmlm added to a converted base (:mod:`evmlm.models.base`): their
    embedding rows are initialised but untrained, so LoRA fine-tuning trains them too."""
    from evmlm.models.base import base_record

    rec = base_record(base) if Path(base).is_dir() else None
    return sorted(rec["added_tokens"].values()) if rec else []


def _expose_head_bias(model: Any) -> None:
    """Let TRL's fused LM head read ``lm_head.bias`` through PEFT's trainable-tokens wrapper.

    With tied embeddings, ``trainable_token_indices`` wraps ``lm_head`` too; PEFT 0.21's
    ``TrainableTokensWrapper`` forwards ``weight`` (with the token deltas) but not ``bias``,
    which TRL 1.16's fused LM head reads, so evaluation failed with an AttributeError. The
    wrapper gets its original module's bias (None for Llama).
    """
    head = model.get_output_embeddings()
    original = getattr(head, "original_module", None)
    if original is not None and "bias" not in head.__dict__:
        try:
            head.bias  # noqa: B018 - probing the wrapper
        except AttributeError:
            head.__dict__["bias"] = original.bias


def load_base_model(
    base: str, method: str, *, n_tokens: int | None = None, gradient_checkpointing: bool = False
) -> Any:
    """The base model for ``method``: float32 for full/LoRA, 4-bit NF4 (bf16 compute) for QLoRA.

    ``n_tokens``: resize the embeddings to this vocabulary size when larger (added tokens).
    """
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if method == "qlora":
        kwargs = {
            "dtype": torch.bfloat16,
            "quantization_config": BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            ),
        }
    model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    if n_tokens and n_tokens > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(n_tokens)
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        keep_trainable_4bit_layout(model)
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing
        )
    return model


def keep_trainable_4bit_layout(model: Any) -> None:
    """Stop bitsandbytes repacking 4-bit weights into its CPU inference layout during evaluation.

    bitsandbytes 0.50 converts a ``Linear4bit`` weight to an AVX512-BF16 packed layout the first
    time it runs in eval mode without grad on a CPU that has AVX512-BF16 (this one does), and
    never converts it back; in that layout the matmul (``gemv_4bit``) has no autograd kernel,
    so after the first evaluation the gradient through every frozen 4-bit layer to the layers
    below is silently dropped (measured: the layer-0 LoRA A gradient differed by 100% of its
    size after one eval pass; identical with this switch). Evaluation then uses the ordinary
    dequantising path.
    """
    for m in model.modules():
        if hasattr(m, "support_avx512bf16_for_cpu"):
            m.support_avx512bf16_for_cpu = False


def lora_config(cfg: FinetuneConfig, new_token_ids: Sequence[int] = ()):  # -> peft.LoraConfig
    """The ``peft.LoraConfig`` of ``cfg`` (rank, alpha, dropout, target group)."""
    from peft import LoraConfig

    kw: dict[str, Any] = {}
    if new_token_ids:
        kw["trainable_token_indices"] = {"embed_tokens": list(new_token_ids)}
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(LORA_TARGETS[cfg.lora_targets]),
        bias="none",
        task_type="CAUSAL_LM",
        **kw,
    )


def sft_config(
    cfg: FinetuneConfig,
    output_dir: Path,
    *,
    max_steps: int,
    seed: int = 0,
    eval_on_start: bool = True,
):  # -> trl.SFTConfig
    """TRL settings of a fine-tuning run (CPU-safe: ``use_cpu`` when there is no GPU).

    ``eval_on_start``: evaluate before the first step (the eval-loss curve's step-0 point; off
    when resuming, where that point exists already).
    """
    from trl import SFTConfig

    from evmlm.train.arguments import shared_trainer_kwargs

    return SFTConfig(
        **shared_trainer_kwargs(cfg, output_dir, seed=seed),
        max_length=cfg.max_length,
        completion_only_loss=True,
        packing=False,
        lr_scheduler_type=cfg.lr_scheduler,
        max_steps=max_steps,
        eval_on_start=eval_on_start,
        activation_checkpointing=cfg.gradient_checkpointing,  # transformers 5 name of gradient checkpointing
        include_num_input_tokens_seen="non_padding",
    )


def finetune(
    cfg: FinetuneConfig,
    *,
    base_model: str | Path,
    train_records: Sequence[Mapping[str, Any]],
    eval_records: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    tokenizer_dir: str | Path | None = None,
    seed: int = 0,
    threads: int | None = None,
    resume: bool = True,
    info: dict[str, Any] | None = None,
    callbacks: Sequence[Any] = (),
    eval_on_start: bool = True,
) -> FinetuneResult:
    """Fine-tune ``base_model`` on pair records (TAC -> Solidity), evaluating on ``eval_records``.

    ``base_model``: a local HF model folder (e.g. this run's ``pretrain/model``) or a cached hub
    name. ``tokenizer_dir``: tokenizer to use when the base folder has none. Training runs for
    ``cfg.epochs`` epochs or ``cfg.max_steps`` steps, whichever is fewer (or until
    ``time_budget_s`` / early stopping). ``resume``: continue from the newest checkpoint under
    ``out_dir/checkpoints``. ``eval_on_start``: evaluate before the first step (the step-0
    point of ``eval_losses``; :mod:`evmlm.experiment` turns it off for variants after the
    first, whose step-0 model is the same base). Raises QLoRAUnsupportedError (before any work)
    when QLoRA cannot run here, ModelLoadError for a bad base, TrainingDataError when there is
    nothing to train on.
    """
    import torch
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    from evmlm.train.callbacks import plot_loss_curve, standard_callbacks
    from evmlm.train.inference import resolve_model_path

    if threads:
        torch.set_num_threads(threads)
    out = Path(out_dir)
    base = resolve_model_path(base_model)
    if Path(base).is_dir():
        base = str(Path(base).resolve())
    if cfg.method == "qlora":
        check_qlora_platform(base)
    own_tokenizer = (
        not Path(base).is_dir() or (Path(base) / "tokenizer_config.json").is_file()
    )  # hub models have theirs
    tokenizer = _load_tokenizer(base, None if own_tokenizer else tokenizer_dir)
    new_ids = _add_prompt_tokens(tokenizer) or _converted_token_ids(base)

    from datasets import Dataset

    train = to_sft_examples(train_records, tokenizer, cfg.max_length)
    evals = to_sft_examples(
        eval_records[: cfg.max_eval_examples] if cfg.max_eval_examples else eval_records,
        tokenizer,
        cfg.max_length,
    )
    if not train.rows:
        raise TrainingDataError(
            f"finetune: no training pairs fit finetune.max_length={cfg.max_length} ({train.n_records} records); raise it or check the dataset"
        )
    if not evals.rows:
        raise TrainingDataError(
            "finetune: no validation pairs; the dataset's validation split is empty"
        )
    steps_per_epoch = math.ceil(len(train.rows) / (cfg.batch_size * cfg.grad_accum))
    max_steps = max(1, min(cfg.max_steps, math.ceil(cfg.epochs * steps_per_epoch)))

    model = load_base_model(
        base, cfg.method, n_tokens=len(tokenizer), gradient_checkpointing=cfg.gradient_checkpointing
    )
    if cfg.method in ("lora", "qlora"):
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(cfg, new_ids))
        _expose_head_bias(model)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    memory = int(model.get_memory_footprint())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    last = (
        get_last_checkpoint(str(out / "checkpoints"))
        if resume and (out / "checkpoints").is_dir()
        else None
    )
    args = sft_config(
        cfg,
        out / "checkpoints",
        max_steps=max_steps,
        seed=seed,
        eval_on_start=eval_on_start and last is None,
    )
    cbs = standard_callbacks(
        tb_dir=out / "tb",
        curve_path=out / "loss_curve.png",
        title=f"finetune {cfg.method} (completion loss)",
        time_budget_s=cfg.time_budget_s,
        early_stopping_patience=cfg.early_stopping_patience,
    )
    if cfg.lora_phases:
        from evmlm.train.callbacks import PhasedLoRACallback

        cbs.append(PhasedLoRACallback(cfg.lora_phases, out))
    if cfg.grad_norm_steps:
        from evmlm.train.grad_norms import GradNormCallback

        cbs.append(GradNormCallback(out, cfg.grad_norm_steps, tb_dir=out / "tb"))
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train.rows),
        eval_dataset=Dataset.from_list(evals.rows),
        processing_class=tokenizer,
        callbacks=[*cbs, *callbacks],
    )
    if last:
        log.info("resuming from %s", last)
    seen_before = 0
    if last:
        import json

        seen_before = (
            json.loads((Path(last) / "trainer_state.json").read_text()).get(
                "num_input_tokens_seen", 0
            )
            or 0
        )
    res = trainer.train(resume_from_checkpoint=last)
    state = trainer.state
    runtime = float(res.metrics.get("train_runtime", 0.0)) or 1e-9
    eval_losses = sorted(
        {
            int(r["step"]): float(r["eval_loss"]) for r in state.log_history if "eval_loss" in r
        }.items()
    )
    result = FinetuneResult(
        method=cfg.method,
        model_dir=out / "model",
        adapter_dir=out / "adapter" if cfg.method != "full" else None,
        steps=state.global_step,
        epochs=float(state.epoch or 0.0),
        eval_losses=eval_losses,
        trainable_params=trainable,
        total_params=total,
        model_memory_bytes=memory,
        tokens_per_second=(state.num_input_tokens_seen - seen_before) / runtime,
        seconds=runtime,
        n_train=len(train.rows),
        n_eval=len(evals.rows),
        n_truncated=train.n_truncated + evals.n_truncated,
        n_dropped=train.n_dropped + evals.n_dropped,
        resumed_from=last,
        extra={"steps_per_epoch": steps_per_epoch},
    )
    result.extra["first_epoch_eval_monotonic"] = result.first_epoch_monotonic(steps_per_epoch)
    if not trainer.is_world_process_zero():
        return result  # the main process saves
    full_info = {
        **(info or {}),
        "base_model": base,
        "finetune": to_dict(cfg),
        "result": result.to_dict(),
    }
    plot_loss_curve(
        state.log_history, out / "loss_curve.png", f"finetune {cfg.method} (completion loss)"
    )
    if cfg.method == "full":
        from evmlm.train.pretrain import save_model

        save_model(trainer, tokenizer, out / "model", full_info)
    else:
        _save_adapter(trainer.model, tokenizer, out / "adapter", full_info)
        merge_adapter(base, out / "adapter", out / "model", full_info)
    log.info("finetune: %s", result.line())
    return result


def _save_adapter(model: Any, tokenizer: Any, adapter_dir: Path, info: dict[str, Any]) -> None:
    tmp = adapter_dir.with_name(adapter_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    atomic.write_json(tmp / "training_info.json", info)
    shutil.rmtree(adapter_dir, ignore_errors=True)
    tmp.rename(adapter_dir)


def merge_adapter(
    base: str | Path,
    adapter_dir: str | Path,
    model_dir: str | Path,
    info: dict[str, Any] | None = None,
) -> Path:
    """Load ``base`` in float32, apply the adapter, merge it into the weights, save a plain model.

    The merged model computes W + (alpha / r) B A in every adapted layer, so its logits equal the
    adapter model's up to float rounding. A QLoRA adapter is merged into the unquantised base.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, model_dir = Path(adapter_dir), Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    base_model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    if len(tokenizer) > base_model.get_input_embeddings().weight.shape[0]:
        base_model.resize_token_embeddings(len(tokenizer))
    merged = PeftModel.from_pretrained(base_model, str(adapter_dir)).merge_and_unload()
    tmp = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    atomic.write_json(tmp / "training_info.json", info or {})
    shutil.rmtree(model_dir, ignore_errors=True)
    tmp.rename(model_dir)
    return model_dir
