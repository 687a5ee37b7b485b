"""The ``tokenizer``, ``pretrain`` and ``finetune`` stages of ``evmlm run``.

- ``tokenizer/``: the run's byte-level BPE (a PreTrainedTokenizerFast folder), trained on the
  corpus's Solidity and the dataset's train-split TAC.
- ``pretrain/``: ``data/{train,val}.bin`` (Solidity files held out by hash for validation;
  train-split TAC added to train), ``checkpoints/``, ``tb/``, ``loss_curve.png``, ``model/``.
- ``cpt/`` (:mod:`evmlm.train.cpt`): continued pretraining of a pretrained base when
  ``cpt.enabled``.
- ``finetune/``: ``checkpoints/``, ``tb/``, ``loss_curve.png``, ``adapter/`` (LoRA/QLoRA),
  ``model/`` (merged plain model + tokenizer), ``metrics.json``.

A stage stopped part-way resumes from its newest checkpoint when it runs again with the same
settings; checkpoints made with other settings or data are discarded first
(``checkpoints/run.json`` records what they belong to).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from evmlm import atomic
from evmlm.config import to_dict
from evmlm.pipeline import StageContext
from evmlm.train.data import (
    TrainingDataError,
    dataset_fingerprint,
    is_heldout,
    read_pairs,
    write_token_file,
)
from evmlm.train.threads import effective_threads

log = logging.getLogger(__name__)


def _iter_sources(corpus_dir: Path) -> Iterator[Any]:
    from evmlm.corpus import iter_sources

    yield from iter_sources(corpus_dir)


def _train_tac(dataset_dir: Path) -> list[str]:
    try:
        return [r["tac"] for r in read_pairs(dataset_dir, "train") if r.get("tac")]
    except TrainingDataError:
        log.warning("%s: no dataset; training without TAC", dataset_dir)
        return []


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _tokenizer_digest(tok_dir: Path) -> str:
    return atomic.sha256_file(tok_dir / "tokenizer.json")


def _is_main_process() -> bool:
    """True unless this is a non-zero rank of a ``torchrun`` / ``accelerate launch`` job."""
    return os.environ.get("RANK", "0") == "0"


def _barrier() -> None:
    """Wait for every process of a multi-process job (no-op in a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def clear_stale_checkpoints(stage_dir: Path, key: dict[str, Any]) -> bool:
    """Remove ``stage_dir/checkpoints`` unless its ``run.json`` records ``key``; then record it.

    Returns True when existing checkpoints are kept (the run can resume from them). In a
    multi-process job the main process does it while the others wait.
    """
    ck = stage_dir / "checkpoints"
    rec = ck / "run.json"
    digest = _digest(key)
    kept = ck.is_dir() and rec.is_file() and json.loads(rec.read_text()).get("digest") == digest
    if _is_main_process():
        if not kept and ck.exists():
            log.info("%s: checkpoints belong to other settings or data; starting afresh", ck)
            shutil.rmtree(ck)
        atomic.write_json(rec, {"digest": digest, "key": key})
    _barrier()
    return kept


def clear_checkpoints(run_dir: Path, stage: str) -> None:
    """Forget a stage's checkpoints (``--no-resume``)."""
    shutil.rmtree(Path(run_dir) / stage / "checkpoints", ignore_errors=True)


# ---------------------------------------------------------------------------------------------


def input_digest(config: Any) -> str | None:
    """The training stages' outside input: the pretrained ``model.base``'s source files
    (:func:`evmlm.models.base.source_stamp`; None for ``scratch``, leaving fingerprints as
    before), read by :func:`evmlm.pipeline.fingerprint`."""
    from evmlm.models.base import source_stamp

    return source_stamp(config.model.base)


def pretrained_base_dir(base: str) -> Path:
    """The converted folder of a pretrained ``model.base`` (:func:`evmlm.models.base.base_dir`)
    with the prompt format's special tokens, ``<|endoftext|>`` as EOS and ``<|pad|>`` as padding."""
    from evmlm.models.base import base_dir
    from evmlm.train.prompt import EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS

    return base_dir(base, special_tokens=SPECIAL_TOKENS, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN)


def is_pretrained(base: str) -> bool:
    """Whether ``model.base`` names a pretrained model (anything but ``scratch``)."""
    return base != "scratch"


def start_model_dir(ctx: StageContext) -> Path:
    """The model continued pretraining and fine-tuning start from: the converted pretrained
    ``model.base``, or this run's ``pretrain/model`` for ``scratch``."""
    base = ctx.config.model.base
    return pretrained_base_dir(base) if is_pretrained(base) else ctx.dir_of("pretrain") / "model"


def run_tokenizer_stage(ctx: StageContext) -> dict[str, Any]:
    """Train the run's tokenizer on all corpus Solidity (+ train-split TAC); save it in ``tokenizer/``.

    With a pretrained ``model.base`` the base's tokenizer (with evmlm's special tokens) is
    copied instead: the base's embeddings are indexed by it.
    """
    from evmlm.train.tokenizer import train_tokenizer

    if is_pretrained(ctx.config.model.base):
        from evmlm.train.tokenizer import load_tokenizer

        src = pretrained_base_dir(ctx.config.model.base)
        tok = load_tokenizer(src)
        tmp = ctx.stage_dir / ".tokenizer.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tok.save_pretrained(str(tmp))
        for f in tmp.iterdir():
            f.replace(ctx.stage_dir / f.name)
        tmp.rmdir()
        return {
            "line": f"{len(tok)} tokens: the tokenizer of model.base={ctx.config.model.base}",
            "vocab_size": len(tok),
            "base": ctx.config.model.base,
        }
    cfg = ctx.config.tokenizer
    counts = {"solidity_files": 0, "tac_functions": 0, "bytes": 0}

    def texts() -> Iterator[str]:
        for s in _iter_sources(ctx.dir_of("corpus")):
            counts["solidity_files"] += 1
            counts["bytes"] += len(s.text.encode())
            yield s.text
        if cfg.include_tac:
            for t in _train_tac(ctx.dir_of("dataset")):
                counts["tac_functions"] += 1
                counts["bytes"] += len(t.encode())
                yield t

    tok = train_tokenizer(texts(), cfg.vocab_size, min_frequency=cfg.min_frequency)
    out = ctx.stage_dir
    tmp = out / ".tokenizer.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tok.save_pretrained(str(tmp))
    for f in tmp.iterdir():
        f.replace(out / f.name)
    tmp.rmdir()
    line = f"{len(tok)} tokens from {counts['solidity_files']} Solidity files + {counts['tac_functions']} TAC functions ({counts['bytes'] / 1e6:.1f} MB)"
    return {"line": line, "vocab_size": len(tok), **counts}


def run_pretrain_stage(ctx: StageContext) -> dict[str, Any]:
    """Write token files (held-out Solidity for val) and pretrain the preset; model in ``pretrain/model``."""
    from evmlm.train.pretrain import pretrain, result_dict
    from evmlm.train.tokenizer import load_tokenizer

    cfg = ctx.config.pretrain
    if not cfg.enabled:
        return {"line": "disabled (pretrain.enabled=false)", "enabled": False}
    if is_pretrained(ctx.config.model.base):
        return {
            "line": f"skipped: model.base={ctx.config.model.base} is pretrained",
            "enabled": False,
        }
    out = ctx.stage_dir
    tok_dir = ctx.dir_of("tokenizer")
    tokenizer = load_tokenizer(tok_dir)
    train_texts: list[str] = []
    val_texts: list[str] = []
    for s in _iter_sources(ctx.dir_of("corpus")):
        (val_texts if is_heldout(s.sha256, cfg.val_fraction) else train_texts).append(s.text)
    if not val_texts and len(train_texts) > 1:
        val_texts.append(train_texts.pop())  # a tiny corpus: hold out one file
    if not train_texts:
        raise TrainingDataError(
            f"{ctx.dir_of('corpus')}: no Solidity files to pretrain on; run the corpus stage first"
        )
    n_tac = 0
    if cfg.include_tac:
        tac = _train_tac(ctx.dir_of("dataset"))
        n_tac = len(tac)
        train_texts.extend(tac)
    data = out / "data"
    n_train = write_token_file(train_texts, tokenizer, data / "train.bin")
    n_val = write_token_file(val_texts, tokenizer, data / "val.bin")
    key = {
        "pretrain": to_dict(cfg),
        "tokenizer": _tokenizer_digest(tok_dir),
        "train": atomic.sha256_file(data / "train.bin"),
        "seed": ctx.config.run.seed,
    }
    clear_stale_checkpoints(out, key)
    info = {
        "config": ctx.declared(),
        "data": {
            "train_tokens": n_train,
            "val_tokens": n_val,
            "train_sha256": key["train"],
            "tokenizer_sha256": key["tokenizer"],
        },
    }
    res = pretrain(
        cfg,
        tokenizer=tokenizer,
        data_dir=data,
        out_dir=out,
        seed=ctx.config.run.seed,
        threads=effective_threads(ctx.threads),
        resume=True,
        info=info,
    )
    return write_lm_summary(out, res.line(), result_dict(res), n_train, n_val, n_tac)


def write_lm_summary(
    out: Path, line: str, result: dict[str, Any], n_train: int, n_val: int, n_tac: int
) -> dict[str, Any]:
    """The summary of a language-modelling stage (``pretrain``, ``cpt``): the result's line
    with the token counts, the result's fields, ``train_tokens`` / ``val_tokens`` (tokens);
    written to ``out/metrics.json`` by the main process. Returns the summary."""
    summary = {
        "line": line + f" ({n_train:,} train / {n_val:,} val tokens, {n_tac} TAC functions)",
        **result,
        "train_tokens": n_train,
        "val_tokens": n_val,
    }
    if _is_main_process():
        atomic.write_json(out / "metrics.json", summary)
    return summary


def _carve_validation(
    train: list[dict[str, Any]], share: float = 0.1
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split train records by contract (never one contract on both sides) when validation is empty."""
    key = lambda r: str(r.get("cluster_id") or r.get("contract") or r.get("id"))  # noqa: E731
    val = [r for r in train if is_heldout(key(r), share)]
    if not val:
        first = key(train[0])
        val = [r for r in train if key(r) == first]
    ids = {id(r) for r in val}
    return [r for r in train if id(r) not in ids], val


def run_finetune_stage(ctx: StageContext) -> dict[str, Any]:
    """Fine-tune the base (default: this run's pretrained model) on the dataset; merged model in ``finetune/model``."""
    from evmlm.train.finetune import finetune

    cfg = ctx.config.finetune
    out = ctx.stage_dir
    ds_dir = ctx.dir_of("dataset")
    pretrained = is_pretrained(ctx.config.model.base)
    if cfg.base_model is None and not ctx.config.pretrain.enabled and not pretrained:
        raise TrainingDataError(
            "finetune.base_model is unset and pretrain.enabled is false; name a base model or enable pretraining"
        )
    if cfg.backend == "unsloth":
        from evmlm.train.unsloth_backend import check_unsloth

        check_unsloth()
    if cfg.base_model is not None:
        base = cfg.base_model
    elif ctx.config.cpt.enabled:
        base = str(ctx.dir_of("cpt") / "model")
    else:
        base = str(start_model_dir(ctx))
    train = read_pairs(ds_dir, "train")
    val = read_pairs(ds_dir, "validation")
    if not train:
        raise TrainingDataError(f"{ds_dir}: the train split is empty; build a larger dataset")
    if not val:
        log.warning(
            "%s: validation split is empty; holding out train contracts for eval loss", ds_dir
        )
        train, val = _carve_validation(train)
    fingerprint = dataset_fingerprint(ds_dir)
    base_digest = (
        atomic.sha256_file(Path(base) / "model.safetensors")
        if (Path(base) / "model.safetensors").is_file()
        else base
    )
    clear_stale_checkpoints(
        out,
        {
            "finetune": to_dict(cfg),
            "dataset": fingerprint,
            "base": base_digest,
            "seed": ctx.config.run.seed,
        },
    )
    info = {
        "config": ctx.declared(),
        "dataset_fingerprint": fingerprint,
        "base_model_sha256": base_digest,
    }
    tok_dir = (
        ctx.dir_of("tokenizer") if (ctx.dir_of("tokenizer") / "tokenizer.json").is_file() else None
    )
    res = finetune(
        cfg,
        base_model=base,
        train_records=train,
        eval_records=val,
        out_dir=out,
        tokenizer_dir=tok_dir,
        seed=ctx.config.run.seed,
        threads=effective_threads(ctx.threads),
        resume=True,
        info=info,
    )
    summary = {"line": res.line(), **res.to_dict(), "dataset_fingerprint": fingerprint}
    if _is_main_process():
        atomic.write_json(out / "metrics.json", summary)
    return summary
