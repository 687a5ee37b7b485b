"""Training and teacher-forced evaluation of the multi-task decoder through the HF Trainer.

:func:`train` builds a :class:`~evmlm.multitask.modeling.MultitaskForCausalLM` from a
:class:`MultitaskRunConfig` (YAML: ``configs/multitask/*.yaml``), trains it with
:class:`MultitaskTrainer` (``compute_loss`` = :class:`~evmlm.multitask.loss.MultitaskLoss`;
cosine schedule with warmup, bf16 on CPU when asked, early stopping on the validation detail
loss, TensorBoard, a wall-clock budget: :func:`evmlm.train.callbacks.standard_callbacks`) and
writes an experiment folder::

    <out>/config.json               this run's config (every field)
    <out>/training_history.json     the Trainer's log history (train and eval losses per part)
    <out>/evaluation_results.json   :func:`evaluate_heads` on the evaluation split
    <out>/model/                    the final (best) model + tokenizer (save_pretrained)
    <out>/checkpoints/              Trainer checkpoints (best kept), <out>/tb/ TensorBoard

Variants (the ablation of docs/multitask.md): ``multitask`` (all four losses), ``plain``
(detail loss only: a plain Llama decoder, the heads untrained) — each with any
``share`` (cross-layer weight sharing) and ``attention``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from evmlm import atomic
from evmlm.dataset.labels import CLASS_INDEX, ELEMENT_TYPES, SEMANTIC_CLASSES
from evmlm.errors import EvmlmError
from evmlm.multitask.data import ExampleStats, MultitaskCollator, to_examples
from evmlm.multitask.loss import LossWeights, MultitaskLoss
from evmlm.multitask.modeling import (
    MultitaskConfig,
    MultitaskForCausalLM,
    register_auto_classes,
    share_groups,
)

log = logging.getLogger(__name__)

VARIANTS = ("multitask", "plain")
EXAMPLES_FORMAT = 2  # in the examples' cache key; 2: the prompt holds the structural draft


class MultitaskConfigError(EvmlmError, ValueError):
    """A multi-task config value out of range or an unknown key (the message names it)."""


@dataclass(frozen=True)
class MultitaskRunConfig:
    """One multi-task training run (``configs/multitask/full.yaml``, ``configs/multitask/small.yaml``).

    Data: ``dataset_dir`` (a dataset stage folder), ``tokenizer_dir``, ``out_dir``;
    ``train_limit`` / ``eval_limit``: records used (None = all; a deterministic prefix of the
    split in id order). Model: ``hidden_size``, ``intermediate_size``, ``num_layers``
    (logical), ``num_heads``, ``share`` (consecutive layers per shared block; 1 = none),
    ``attention`` (sdpa | sparse), ``sparse_window``, ``sparse_top_k``, ``max_length``
    (tokens per example = the model's context). Loss: ``variant`` (multitask | plain),
    ``weighting`` (fixed | uncertainty), ``weights`` (λ). Trainer: ``batch_size``,
    ``grad_accum``, ``learning_rate``, ``lr_scheduler`` (cosine | constant_with_warmup |
    linear; cosine decays to 0 at ``max_steps``), ``warmup_ratio``, ``max_steps``, ``time_budget_s``
    (wall seconds, None = no budget), ``eval_steps``, ``logging_steps``,
    ``early_stopping_patience`` (evaluations; None = off), ``bf16``, ``seed``.
    Start: ``init_from`` (None = random weights) is a saved Llama causal LM folder — the
    default run's fine-tuned model (``runs/default/finetune/model``) or a converted base — whose
    weights, shape and tokenizer the backbone and the detail head take (``tokenizer_dir`` and
    the shape fields are then not read; the semantic and element heads start random), or a
    saved multi-task model, whose training continues (:func:`from_saved`);
    ``train_layers`` (None = every weight) trains only the last N layers, the final norm and the
    semantic and element heads (transfer learning's layer freezing: the backward pass stops N
    layers down); ``head_learning_rate`` (None = ``learning_rate``): the peak rate of the
    semantic and element heads (and ``task_log_vars``), which start from random weights while
    the backbone does not; the schedule scales both rates alike. Raises
    :class:`MultitaskConfigError` for a bad value.
    """

    dataset_dir: str = "runs/default/dataset"
    tokenizer_dir: str = "runs/default/tokenizer"
    out_dir: str = "runs/default/multitask"
    train_limit: int | None = None
    eval_limit: int | None = 200
    eval_split: str = "validation"
    hidden_size: int = 192
    intermediate_size: int = 512
    num_layers: int = 6
    num_heads: int = 6
    share: int = 1
    attention: str = "sdpa"
    sparse_window: int = 64
    sparse_top_k: int = 4
    max_length: int = 1024
    variant: str = "multitask"
    weighting: str = "fixed"
    weights: LossWeights = field(default_factory=LossWeights)
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 1e-3
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    max_steps: int = 1000
    time_budget_s: float | None = None
    eval_steps: int = 100
    logging_steps: int = 10
    early_stopping_patience: int | None = 3
    bf16: bool = False
    seed: int = 0
    init_from: str | None = None
    train_layers: int | None = None
    head_learning_rate: float | None = None

    def __post_init__(self) -> None:
        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise MultitaskConfigError(f"multitask.{key}: {what}")

        need(self.variant in VARIANTS, "variant", f"one of {', '.join(VARIANTS)}")
        need(self.weighting in ("fixed", "uncertainty"), "weighting", "fixed or uncertainty")
        need(self.attention in ("sdpa", "sparse"), "attention", "sdpa or sparse")
        need(self.eval_split in ("validation", "test", "train"), "eval_split", "a split name")
        for key in ("hidden_size", "intermediate_size", "num_layers", "num_heads", "share"):
            need(getattr(self, key) >= 1, key, "must be >= 1")
        for key in ("batch_size", "grad_accum", "max_steps", "eval_steps", "logging_steps"):
            need(getattr(self, key) >= 1, key, "must be >= 1")
        need(self.max_length >= 64, "max_length", "must be >= 64")
        need(self.hidden_size % self.num_heads == 0, "num_heads", "must divide hidden_size")
        need(self.learning_rate > 0, "learning_rate", "must be > 0")
        need(
            self.lr_scheduler in ("cosine", "constant_with_warmup", "linear"),
            "lr_scheduler",
            "cosine, constant_with_warmup or linear",
        )
        need(0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)")
        need(self.train_layers is None or self.train_layers >= 1, "train_layers", "must be >= 1")
        need(
            self.head_learning_rate is None or self.head_learning_rate > 0,
            "head_learning_rate",
            "must be > 0",
        )
        need(
            self.init_from is None or self.share == 1,
            "share",
            "must be 1 with init_from (the pretrained layers are distinct blocks)",
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any], overrides: dict[str, Any] | None = None):
        """From a YAML mapping (and ``key: value`` overrides). Raises MultitaskConfigError for
        an unknown key or a bad value."""
        merged = {**(data or {}), **(overrides or {})}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise MultitaskConfigError(
                f"unknown multitask key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        if isinstance(merged.get("weights"), dict):
            try:
                merged["weights"] = LossWeights(**merged["weights"])
            except (TypeError, ValueError) as e:
                raise MultitaskConfigError(f"multitask.weights: {e}") from e
        try:
            return cls(**merged)
        except TypeError as e:
            raise MultitaskConfigError(f"multitask config: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_run_config(path: str | Path, overrides: dict[str, Any] | None = None):
    """A :class:`MultitaskRunConfig` from a YAML file. Raises MultitaskConfigError naming the
    file when it is missing or not a mapping."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise MultitaskConfigError(f"{p}: no such config file; pass configs/multitask/*.yaml")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise MultitaskConfigError(f"{p}: expected a YAML mapping of multitask keys")
    return MultitaskRunConfig.from_dict(data, overrides)


def model_config(cfg: MultitaskRunConfig, tokenizer: Any) -> MultitaskConfig:
    """The model config of a run (the tokenizer gives vocabulary size and special ids)."""
    return MultitaskConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_length,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        layer_groups=share_groups(cfg.num_layers, cfg.share),
        attention=cfg.attention,
        sparse_window=cfg.sparse_window,
        sparse_top_k=cfg.sparse_top_k,
        loss_weighting=cfg.weighting if cfg.variant == "multitask" else "fixed",
    )


HEADS = ("semantic_head.", "element_head.", "task_log_vars")  # what init_from does not bring


def from_saved(cfg: MultitaskRunConfig) -> MultitaskForCausalLM:
    """The model ``cfg.init_from`` starts from.

    A Llama causal LM folder: a multi-task model whose backbone and detail head are that model
    (embeddings, every layer, final norm, LM head; its shape and vocabulary), with random
    semantic and element heads and ``cfg``'s attention, weighting and ``max_length`` (the
    model's context). A saved multi-task model folder (``<out_dir>/model`` of an earlier run):
    that model, every weight, heads included — training continues from it; its
    ``element_thresholds`` are dropped (chosen for the weights training is about to change:
    run ``evmlm multitask calibrate`` on the new model). Raises MultitaskConfigError when the
    folder is neither or a weight does not map."""
    from transformers import AutoModelForCausalLM

    from evmlm.train.inference import ModelLoadError, check_model

    register_auto_classes()
    try:
        src = AutoModelForCausalLM.from_pretrained(check_model(cfg.init_from), dtype=torch.float32)
    except (ModelLoadError, OSError, ValueError) as e:
        raise MultitaskConfigError(
            f"multitask.init_from: {cfg.init_from}: {e}; pass a saved Llama model folder"
        ) from e
    if isinstance(src, MultitaskForCausalLM):
        src.config.element_thresholds = None
        return src
    if src.config.model_type != "llama":
        raise MultitaskConfigError(
            f"multitask.init_from: {cfg.init_from} is a {src.config.model_type} model;"
            " pass a Llama model folder (the default run's finetune/model)"
        )
    fields = {
        k: v
        for k, v in src.config.to_dict().items()
        if k not in ("model_type", "architectures", "transformers_version", "_name_or_path")
    }
    config = MultitaskConfig(
        **{
            **fields,
            "max_position_embeddings": cfg.max_length,
            "layer_groups": None,
            "attention": cfg.attention,
            "sparse_window": cfg.sparse_window,
            "sparse_top_k": cfg.sparse_top_k,
            "loss_weighting": cfg.weighting if cfg.variant == "multitask" else "fixed",
        }
    )
    model = MultitaskForCausalLM(config)
    state = {}
    for k, v in src.state_dict().items():
        k = k.removeprefix("model.")
        state["blocks." + k.removeprefix("layers.") if k.startswith("layers.") else k] = v
    missing, unexpected = model.load_state_dict(state, strict=False)
    lacking = sorted(k for k in missing if not k.startswith(HEADS))
    if lacking or unexpected:
        raise MultitaskConfigError(
            f"multitask.init_from: {cfg.init_from}: weights do not map"
            f" (missing {lacking[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
    model.tie_weights()
    return model


def freeze_below(model: MultitaskForCausalLM, train_layers: int) -> None:
    """Train only the blocks of the last ``train_layers`` logical layers, the final norm, the
    semantic and element heads (and ``task_log_vars``); every other weight (embeddings = the
    tied detail head, the lower blocks) is frozen. Raises MultitaskConfigError when the model
    has fewer layers."""
    groups = model.config.groups()
    if train_layers > len(groups):
        raise MultitaskConfigError(
            f"multitask.train_layers: {train_layers} > the model's {len(groups)} layers"
        )
    model.requires_grad_(False)
    for g in set(groups[-train_layers:]):
        model.blocks[g].requires_grad_(True)
    model.norm.requires_grad_(True)
    for name, p in model.named_parameters():
        if name.startswith(HEADS):
            p.requires_grad_(True)


def head_optimizer(model: MultitaskForCausalLM, lr: float, head_lr: float) -> torch.optim.AdamW:
    """AdamW (the Trainer's default: betas 0.9/0.999, eps 1e-8, no weight decay) with two
    parameter groups: the trainable backbone weights at ``lr``, the semantic and element heads
    (and ``task_log_vars``) at ``head_lr``."""
    heads, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (heads if name.startswith(HEADS) else rest).append(p)
    groups = [{"params": rest, "lr": lr}, {"params": heads, "lr": head_lr}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, weight_decay=0.0)


def element_counts(
    pred: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per element type: true positives, false positives, false negatives (each (types,)) of 0/1
    ``pred`` against 0/1 ``labels`` (functions, types)."""
    return (pred * labels).sum(0), (pred * (1 - labels)).sum(0), ((1 - pred) * labels).sum(0)


def micro_f1(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> float:
    """Micro-F1 from per-type counts: ``2·Σtp / (2·Σtp + Σfp + Σfn)`` (0 when all are 0)."""
    return float(2 * tp.sum() / max(float(2 * tp.sum() + fp.sum() + fn.sum()), 1.0))


def micro_f1_at(probs: torch.Tensor, labels: torch.Tensor, thresholds: Any) -> float:
    """Micro-F1 of ``probs > thresholds`` (a number or (types,)) against 0/1 ``labels`` (both
    (functions, types))."""
    return micro_f1(*element_counts((probs > thresholds).float(), labels))


THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05, 0.10, ..., 0.95


def choose_thresholds(
    probs: torch.Tensor, labels: torch.Tensor, *, passes: int = 2
) -> torch.Tensor:
    """Per-type thresholds (types,) that maximise the micro-F1 of ``probs > thresholds`` against
    0/1 ``labels`` (both (functions, types)): coordinate ascent from 0.5, each type in turn over
    :data:`THRESHOLD_GRID`, ``passes`` times; a type keeps its threshold unless another one
    raises the micro-F1 (so types absent from ``labels`` stay at 0.5)."""
    th = torch.full((probs.shape[1],), 0.5)
    for _ in range(passes):
        for j in range(probs.shape[1]):
            best_f, best_t = micro_f1_at(probs, labels, th), float(th[j])
            for g in THRESHOLD_GRID:
                th[j] = g
                f = micro_f1_at(probs, labels, th)
                if f > best_f + 1e-9:
                    best_f, best_t = f, g
            th[j] = best_t
    return th


THRESHOLD_RULES = ("0.5", "shared", "per_type")


def choose_shared_threshold(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One threshold for every type (types,): the value of :data:`THRESHOLD_GRID` that
    maximises the micro-F1 of ``probs > t`` against 0/1 ``labels`` (both (functions, types));
    the first of equals, 0.5 when nothing beats it."""
    best_f, best_t = micro_f1_at(probs, labels, 0.5), 0.5
    for g in THRESHOLD_GRID:
        f = micro_f1_at(probs, labels, g)
        if f > best_f + 1e-9:
            best_f, best_t = f, g
    return torch.full((probs.shape[1],), best_t)


def fit_threshold_rule(rule: str, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Thresholds (types,) by one of :data:`THRESHOLD_RULES`: ``0.5`` (every type),
    ``shared`` (:func:`choose_shared_threshold`), ``per_type`` (:func:`choose_thresholds`).
    Raises ValueError for another rule."""
    if rule == "0.5":
        return torch.full((probs.shape[1],), 0.5)
    if rule == "shared":
        return choose_shared_threshold(probs, labels)
    if rule == "per_type":
        return choose_thresholds(probs, labels)
    raise ValueError(f"threshold rule {rule!r}: use one of {', '.join(THRESHOLD_RULES)}")


def cross_validate_rules(
    probs: torch.Tensor, labels: torch.Tensor, *, folds: int = 2
) -> dict[str, float]:
    """Held-out micro-F1 of each of :data:`THRESHOLD_RULES` by ``folds``-fold cross-validation
    over the functions (rows of ``probs`` / ``labels``, both (functions, types); fold ``k`` =
    rows ``k, k + folds, ...``): each fold is predicted with the thresholds the rule fits on the
    other folds, and the counts of all folds are pooled into one micro-F1. Raises ValueError
    when there are fewer functions than folds."""
    n = probs.shape[0]
    if n < folds:
        raise ValueError(f"{n} functions: cross-validation needs at least {folds}")
    idx = torch.arange(n)
    scores = {}
    for rule in THRESHOLD_RULES:
        counts = None
        for k in range(folds):
            held, fit = idx % folds == k, idx % folds != k
            th = fit_threshold_rule(rule, probs[fit], labels[fit])
            c = element_counts((probs[held] > th).float(), labels[held])
            counts = c if counts is None else [a + b for a, b in zip(counts, c)]
        scores[rule] = micro_f1(*counts)
    return scores


def choose_threshold_rule(
    probs: torch.Tensor, labels: torch.Tensor
) -> tuple[str, dict[str, float]]:
    """The rule of :data:`THRESHOLD_RULES` with the best held-out micro-F1
    (:func:`cross_validate_rules`; the simpler rule, earlier in the tuple, on a tie), and every
    rule's score. Per-type thresholds have one free value per type; on a few hundred functions
    they fit noise (docs/multitask.md, `calibrate` under "Training"), which is why they must win
    held out."""
    cv = cross_validate_rules(probs, labels)
    rule = max(THRESHOLD_RULES, key=lambda r: (round(cv[r], 9), -THRESHOLD_RULES.index(r)))
    return rule, cv


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a shared or tied tensor counts once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


class MultitaskTrainer(Trainer):
    """``Trainer`` whose ``compute_loss`` is the multi-task loss; the parts (detail, semantic,
    element, consistency) are logged beside the total, train and eval (``eval_detail`` ...)."""

    def __init__(self, *args: Any, mt_loss: MultitaskLoss, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mt_loss = mt_loss
        self._sums: dict[str, dict[str, float]] = {"train": {}, "eval": {}}
        self._counts = {"train": 0, "eval": 0}

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        out = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            prompt_mask=inputs["prompt_mask"],
        )
        total, parts = self.mt_loss(out, inputs, getattr(model, "task_log_vars", None))
        phase = "train" if model.training else "eval"
        for k, v in parts.items():
            self._sums[phase][k] = self._sums[phase].get(k, 0.0) + v
        self._counts[phase] += 1
        return (total, out) if return_outputs else total

    def _means(self, phase: str) -> dict[str, float]:
        n = max(self._counts[phase], 1)
        out = {k: round(v / n, 5) for k, v in self._sums[phase].items()}
        self._sums[phase], self._counts[phase] = {}, 0
        return out

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs and self._counts["train"]:
            logs.update(self._means("train"))
        super().log(logs, *args, **kwargs)

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
        self._sums["eval"], self._counts["eval"] = {}, 0
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", "eval")
        output.metrics.update({f"{prefix}_{k}": v for k, v in self._means("eval").items()})
        return output


def cached_examples(
    cfg: MultitaskRunConfig, tokenizer: Any, split: str, limit: int | None
) -> tuple[list[dict[str, list]], ExampleStats]:
    """:func:`to_examples` of a split, cached beside the experiment folders
    (``<out_dir>/../.examples/<key>.json``; the key covers :data:`EXAMPLES_FORMAT`, the
    dataset's ``pairs.jsonl`` size and mtime, the tokenizer's vocabulary, ``max_length``, the
    split and the limit), so the arms of an ablation prepare the same data once."""
    import hashlib

    pairs = Path(cfg.dataset_dir) / "pairs.jsonl"
    st = pairs.stat() if pairs.is_file() else None
    key = hashlib.sha256(
        json.dumps(
            [
                EXAMPLES_FORMAT,
                str(Path(cfg.dataset_dir).resolve()),
                [st.st_size, st.st_mtime_ns] if st else None,
                sorted(tokenizer.get_vocab().items()),
                cfg.max_length,
                split,
                limit,
            ]
        ).encode()
    ).hexdigest()[:20]
    path = Path(cfg.out_dir).resolve().parent / ".examples" / f"{key}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        return data["rows"], ExampleStats(**data["stats"])
    rows, stats = to_examples(_read(cfg.dataset_dir, split, limit), tokenizer, cfg.max_length)
    atomic.write_json(path, {"rows": rows, "stats": dataclasses.asdict(stats)}, indent=None)
    return rows, stats


def _read(dataset_dir: str | Path, split: str, limit: int | None) -> list[dict[str, Any]]:
    from evmlm.train.data import read_pairs

    recs = sorted(read_pairs(dataset_dir, split), key=lambda r: str(r["id"]))
    return recs[:limit] if limit else recs


def train(cfg: MultitaskRunConfig, *, threads: int | None = None) -> dict[str, Any]:
    """Train one run (module doc); returns a summary with a one-line ``line``. Raises
    TrainingDataError / TokenizerError for a missing dataset or tokenizer."""
    from transformers import TrainingArguments, set_seed

    from evmlm.train.callbacks import standard_callbacks
    from evmlm.train.tokenizer import load_tokenizer

    if threads:
        torch.set_num_threads(threads)
    register_auto_classes()
    set_seed(cfg.seed)
    tok = load_tokenizer(cfg.init_from or cfg.tokenizer_dir)  # fails before anything is written
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "config.json", cfg.to_dict())
    t0 = time.perf_counter()
    train_rows, train_stats = cached_examples(cfg, tok, "train", cfg.train_limit)
    eval_rows, eval_stats = cached_examples(cfg, tok, cfg.eval_split, cfg.eval_limit)
    prep_s = time.perf_counter() - t0
    log.info(
        "multitask: %d train / %d eval examples (%d / %d dropped as too long) in %.0f s",
        train_stats.n_examples,
        eval_stats.n_examples,
        train_stats.n_dropped,
        eval_stats.n_dropped,
        prep_s,
    )
    if cfg.init_from:
        model = from_saved(cfg)
    else:
        model = MultitaskForCausalLM(model_config(cfg, tok))
    if cfg.train_layers:
        freeze_below(model, cfg.train_layers)
    weights = cfg.weights if cfg.variant == "multitask" else LossWeights(1.0, 0.0, 0.0, 0.0)
    mt_loss = MultitaskLoss(
        model.config.num_semantic_classes,
        model.config.num_element_types,
        cfg.weighting if cfg.variant == "multitask" else "fixed",
        weights,
    )
    early = cfg.early_stopping_patience is not None
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=int(cfg.warmup_ratio * cfg.max_steps),
        max_steps=cfg.max_steps,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=early,
        metric_for_best_model="eval_detail" if early else None,
        greater_is_better=False if early else None,
        prediction_loss_only=True,
        bf16=cfg.bf16,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        remove_unused_columns=False,
        report_to="none",
        seed=cfg.seed,
    )
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.max_length
    trainer = MultitaskTrainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=MultitaskCollator(tok.pad_token_id),
        callbacks=standard_callbacks(
            tb_dir=out / "tb",
            curve_path=out / "loss_curve.png",
            title=f"multitask ({cfg.variant}, {cfg.weighting})",
            tokens_per_step=tokens_per_step,
            time_budget_s=cfg.time_budget_s,
            early_stopping_patience=cfg.early_stopping_patience,
        ),
        mt_loss=mt_loss,
        optimizers=(
            head_optimizer(model, cfg.learning_rate, cfg.head_learning_rate)
            if cfg.head_learning_rate
            else None,
            None,
        ),
    )
    t1 = time.perf_counter()
    result = trainer.train()
    train_s = time.perf_counter() - t1
    model_dir = out / "model"
    trainer.model.save_pretrained(str(model_dir))
    tok.save_pretrained(str(model_dir))
    atomic.write_json(out / "training_history.json", trainer.state.log_history)
    results = evaluate_heads(trainer.model, tok, eval_rows, batch_size=cfg.batch_size)
    results.update(
        {
            "baselines": label_baselines(train_rows, eval_rows),
            "split": cfg.eval_split,
            "variant": cfg.variant,
            "weighting": cfg.weighting,
            "parameters": count_parameters(trainer.model),
            "steps": trainer.state.global_step,
            "train_seconds": round(train_s, 1),
            "prepare_seconds": round(prep_s, 1),
            "train_loss": round(float(result.training_loss), 5),
            "examples": {"train": train_stats.n_examples, "eval": eval_stats.n_examples},
        }
    )
    atomic.write_json(out / "evaluation_results.json", results)
    line = (
        f"{cfg.variant}/{cfg.weighting} share={cfg.share} {cfg.attention}: "
        f"{results['parameters']:,} params, {results['steps']} steps in {train_s:.0f} s; "
        f"{cfg.eval_split}: detail {results['detail_loss']:.3f} nats, "
        f"semantic acc {results['semantic_accuracy']:.3f}, "
        f"element micro-F1 {results['element_micro_f1']:.3f}"
    )
    return {"line": line, "out_dir": str(out), "model_dir": str(model_dir), **results}


@torch.no_grad()
def evaluate_heads(
    model: Any, tokenizer: Any, rows: list[dict[str, list]], *, batch_size: int = 4
) -> dict[str, Any]:
    """Teacher-forced metrics of the three heads on examples from :func:`to_examples`:
    ``detail_loss`` (nats/token) and ``perplexity``; ``semantic_accuracy`` (the head at t
    against the class of token t + 1, over completion tokens) and the same without whitespace
    and comment tokens; ``element_micro_f1`` / ``element_macro_f1`` (the model's thresholds,
    ``MultitaskConfig.thresholds``; macro over the element types present in the references),
    per-element F1, and ``element_micro_f1_p50`` (every threshold 0.5: equal to
    ``element_micro_f1`` unless the model is calibrated)."""
    from tqdm import tqdm

    model.eval()
    collate = MultitaskCollator(tokenizer.pad_token_id)
    nll = n_tok = 0.0
    correct = total = correct_code = total_code = 0
    # (tp, fp, fn) per type: at the model's thresholds, and at P > 0.5
    counts = [torch.zeros(len(ELEMENT_TYPES)) for _ in range(3)]
    half = [torch.zeros(len(ELEMENT_TYPES)) for _ in range(3)]
    thresholds = torch.tensor(model.config.thresholds())
    skip = torch.tensor([CLASS_INDEX["whitespace"], CLASS_INDEX["comment"]])
    starts = range(0, len(rows), batch_size)
    for i in tqdm(starts, desc="multitask evaluate", unit="batch", leave=False):
        b = collate(rows[i : i + batch_size])
        out = model(
            input_ids=b["input_ids"],
            attention_mask=b["attention_mask"],
            prompt_mask=b["prompt_mask"],
        )
        logits = out.logits[:, :-1].float()
        labels = b["labels"][:, 1:]
        m = labels != -100
        nll += float(torch.nn.functional.cross_entropy(logits[m], labels[m], reduction="sum"))
        n_tok += int(m.sum())
        sem = b["semantic_labels"][:, 1:]
        sm = sem != -100
        pred = out.semantic_logits[:, :-1].argmax(-1)
        correct += int((pred[sm] == sem[sm]).sum())
        total += int(sm.sum())
        code = sm & ~torch.isin(sem, skip)
        correct_code += int((pred[code] == sem[code]).sum())
        total_code += int(code.sum())
        probs = torch.sigmoid(out.element_logits.float())
        y = b["element_labels"]
        counts = [a + c for a, c in zip(counts, element_counts((probs > thresholds).float(), y))]
        half = [a + c for a, c in zip(half, element_counts((probs > 0.5).float(), y))]
    tp, fp, fn = counts
    f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
    present = (tp + fn) > 0
    micro = micro_f1(tp, fp, fn)
    detail = nll / max(n_tok, 1)
    return {
        "n_examples": len(rows),
        "detail_loss": round(detail, 5),
        "perplexity": round(math.exp(min(detail, 50)), 3),
        "semantic_accuracy": round(correct / max(total, 1), 5),
        "semantic_accuracy_code": round(correct_code / max(total_code, 1), 5),
        "semantic_tokens": total,
        "element_micro_f1": round(micro, 5),
        "element_micro_f1_p50": round(micro_f1(*half), 5),
        "element_thresholds": "0.5" if model.config.element_thresholds is None else "calibrated",
        "element_macro_f1": round(float(f1[present].mean()) if present.any() else 0.0, 5),
        "element_f1": {e: round(float(f1[j]), 4) for j, e in enumerate(ELEMENT_TYPES)},
        "element_support": {e: int(tp[j] + fn[j]) for j, e in enumerate(ELEMENT_TYPES)},
        "semantic_classes": len(SEMANTIC_CLASSES),
    }


def label_baselines(
    train_rows: list[dict[str, list]], rows: list[dict[str, list]]
) -> dict[str, float]:
    """Named baselines of the two heads from labels alone (no model), scored on ``rows`` as
    :func:`evaluate_heads` scores the heads: ``element_majority_micro_f1`` (predict the element
    types present in more than half of ``train_rows``), ``semantic_majority_accuracy`` (the most
    frequent class of the train completion tokens) and ``semantic_bigram_accuracy`` (the class
    of token t + 1 from the class of token t: its most frequent follower in ``train_rows``; the
    first completion token from the most frequent first class)."""
    from collections import Counter, defaultdict

    def pairs(r: dict[str, list]):
        sem = r["semantic_labels"]
        for t in range(len(sem) - 1):
            if sem[t + 1] != -100:
                yield sem[t], sem[t + 1]

    follow: dict[int, Counter] = defaultdict(Counter)
    for r in train_rows:
        for a, b in pairs(r):
            follow[a][b] += 1
    overall = Counter()
    for c in follow.values():
        overall.update(c)
    top = overall.most_common(1)[0][0] if overall else 0
    best = {a: c.most_common(1)[0][0] for a, c in follow.items()}
    n = maj = big = 0
    for r in rows:
        for a, b in pairs(r):
            n += 1
            maj += b == top
            big += best.get(a, top) == b
    freq = torch.tensor([r["element_labels"] for r in train_rows]).mean(0)
    guess = (freq > 0.5).float()
    y = torch.tensor([r["element_labels"] for r in rows])
    return {
        "element_majority_micro_f1": round(micro_f1(*element_counts(guess.expand_as(y), y)), 5),
        "semantic_majority_accuracy": round(maj / max(n, 1), 5),
        "semantic_bigram_accuracy": round(big / max(n, 1), 5),
    }


def evaluate_model_dir(
    model_dir: str | Path,
    dataset_dir: str | Path,
    *,
    split: str = "test",
    limit: int | None = None,
    max_length: int | None = None,
    batch_size: int = 4,
) -> dict[str, Any]:
    """:func:`evaluate_heads` of a saved multi-task model on a dataset split (records in id
    order, the first ``limit``). Raises ModelLoadError for a folder that is not one."""
    model, tok, _ = _load_multitask(model_dir)
    rows, stats = to_examples(
        _read(dataset_dir, split, limit), tok, max_length or model.config.max_position_embeddings
    )
    res = evaluate_heads(model, tok, rows, batch_size=batch_size)
    res.update({"split": split, "parameters": count_parameters(model), "dropped": stats.n_dropped})
    return res


def _load_multitask(model_dir: str | Path) -> tuple[Any, Any, str]:
    """(model in eval mode, tokenizer with a pad token, resolved folder) of a saved multi-task
    model. Raises ModelLoadError for a folder that is not one or whose config fails
    :class:`MultitaskConfig`'s checks."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evmlm.train.inference import ModelLoadError, check_model

    register_auto_classes()
    src = check_model(model_dir)
    try:
        model = AutoModelForCausalLM.from_pretrained(src)
    except ValueError as e:  # MultitaskConfig's checks (a hand-edited config.json)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelLoadError(f"{model_dir}/config.json: {first}; fix or re-save it") from None
    if not isinstance(model, MultitaskForCausalLM):
        kind = getattr(model.config, "model_type", "?")
        raise ModelLoadError(
            f"{model_dir}: not a multi-task model (model_type {kind});"
            " pass a folder written by evmlm multitask train"
        )
    tok = AutoTokenizer.from_pretrained(src)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model.eval(), tok, src


def calibrate_model_dir(
    model_dir: str | Path,
    dataset_dir: str | Path,
    *,
    split: str = "validation",
    limit: int | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Choose the element classifier's thresholds on a split and write them into the model
    folder's ``config.json`` (``element_thresholds``, None for the ``0.5`` rule; temp file, then
    rename). The rule — one of :data:`THRESHOLD_RULES` — is the one with the best held-out
    micro-F1 in :func:`cross_validate_rules` on the classifier's probabilities for the split's
    functions (the simpler rule on a tie), then fitted on the whole split. Only the prompt is
    forwarded: the classifier pools the prompt's final hidden states, which causal attention
    keeps independent of the completion. Returns ``split``, ``n_examples``, ``rule``,
    ``cv_micro_f1`` (rule -> held-out micro-F1), ``micro_f1_p50`` (every threshold 0.5),
    ``micro_f1`` (the chosen thresholds, on the split they were fitted on) and ``thresholds``
    (element type -> threshold). Raises ModelLoadError for a folder that is not a multi-task
    model."""
    from tqdm import tqdm

    from evmlm import atomic

    model, tok, src = _load_multitask(model_dir)
    rows, _ = to_examples(
        _read(dataset_dir, split, limit), tok, model.config.max_position_embeddings
    )
    rows = [
        {k: (v if k == "element_labels" else v[: sum(r["prompt_mask"])]) for k, v in r.items()}
        for r in rows
    ]
    collate = MultitaskCollator(tok.pad_token_id)
    probs, labels = [], []
    with torch.no_grad():
        for i in tqdm(range(0, len(rows), batch_size), desc="calibrate", unit="batch"):
            b = collate(rows[i : i + batch_size])
            out = model(
                input_ids=b["input_ids"],
                attention_mask=b["attention_mask"],
                prompt_mask=b["prompt_mask"],
            )
            probs.append(torch.sigmoid(out.element_logits.float()))
            labels.append(b["element_labels"].float())
    p, y = torch.cat(probs), torch.cat(labels)
    rule, cv = choose_threshold_rule(p, y)
    th = fit_threshold_rule(rule, p, y)
    model.config.element_thresholds = None if rule == "0.5" else [float(t) for t in th]
    atomic.write_text(Path(src) / "config.json", model.config.to_json_string())
    return {
        "split": split,
        "n_examples": len(rows),
        "rule": rule,
        "cv_micro_f1": {r: round(f, 5) for r, f in cv.items()},
        "micro_f1_p50": round(micro_f1_at(p, y, 0.5), 5),
        "micro_f1": round(micro_f1_at(p, y, th), 5),
        "thresholds": {e: float(th[j]) for j, e in enumerate(ELEMENT_TYPES)},
    }


def predict_elements(model: Any, tokenizer: Any, prompt: str) -> dict[str, float]:
    """The element classifier's probabilities for one prompt (the TAC prompt, as
    :func:`evmlm.train.prompt.fit_prompt` builds it): element type -> P(present)."""
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = ids[:, -model.config.max_position_embeddings :]
    with torch.no_grad():
        out = model(input_ids=ids, prompt_mask=torch.ones_like(ids))
    probs = torch.sigmoid(out.element_logits[0].float()).tolist()
    return {e: round(p, 4) for e, p in zip(ELEMENT_TYPES, probs)}
