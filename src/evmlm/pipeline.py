"""The ``evmlm run`` chain: stages in order, each skipped when its outputs are current.

A run directory ``runs/<name>/`` holds ``config.yaml`` (the resolved config), one folder per
stage, and ``manifest.json`` (per stage: fingerprint, output files with SHA-256, seconds,
summary). A stage's *fingerprint* hashes its config sections and the output digests of the
stages it needs; a stage is skipped when its completion record (``<stage>/_stage.json``) has
the same fingerprint and every recorded output still has its recorded hash. A stage that was
stopped part-way has no completion record and runs again; stages resume internally (compile
cache, training checkpoints), so nothing finished is redone.

A stage function takes a :class:`StageContext` and returns a JSON-able summary dict; it writes
its outputs under ``ctx.stage_dir`` (atomically, file by file).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from evmlm import atomic
from evmlm.config import RunConfig, dump_yaml, to_dict

log = logging.getLogger(__name__)

STAGE_RECORD = "_stage.json"


@dataclass(frozen=True)
class Stage:
    """One stage of the chain. ``target`` is ``"module:function"`` (imported lazily)."""

    name: str
    target: str
    sections: tuple[str, ...]
    needs: tuple[str, ...]

    def load(self) -> Callable[["StageContext"], dict[str, Any]]:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)


# The chain, in order. Each issue adds its stage here.
STAGES: tuple[Stage, ...] = (
    Stage("corpus", "evmlm.corpus.stage:run_stage", ("corpus",), ()),
    Stage("compile", "evmlm.solc.stage:run_stage", ("compile",), ("corpus",)),
    Stage("lift", "evmlm.evm.stage:run_stage", ("lift",), ("compile",)),
    Stage("dataset", "evmlm.dataset.stage:run_stage", ("dataset",), ("corpus", "compile", "lift")),
    Stage("tokenizer", "evmlm.train.stage:run_tokenizer_stage", ("tokenizer",), ("corpus", "dataset")),
    Stage("pretrain", "evmlm.train.stage:run_pretrain_stage", ("pretrain",), ("corpus", "dataset", "tokenizer")),
    Stage("finetune", "evmlm.train.stage:run_finetune_stage", ("finetune",), ("dataset", "tokenizer", "pretrain")),
    Stage("evaluate", "evmlm.evaluate.stage:run_stage", ("evaluate",), ("compile", "dataset", "finetune")),
)


@dataclass(frozen=True)
class StageContext:
    """What a stage gets: the resolved config, its own folder, and the folders of earlier stages."""

    config: RunConfig
    run_dir: Path
    stage: Stage

    @property
    def stage_dir(self) -> Path:
        return self.run_dir / self.stage.name

    def dir_of(self, stage_name: str) -> Path:
        """Output folder of an earlier stage (must be listed in ``needs`` or before it)."""
        return self.run_dir / stage_name


def stage_names() -> list[str]:
    return [s.name for s in STAGES]


def _get_stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"unknown stage {name!r}; stages: {', '.join(stage_names())}")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _outputs(stage_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(stage_dir)): atomic.sha256_file(p)
        for p in sorted(stage_dir.rglob("*"))
        if p.is_file() and p.name != STAGE_RECORD and not p.name.endswith(".tmp")
    }


def _record(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / STAGE_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def fingerprint(config: RunConfig, stage: Stage, run_dir: Path) -> str:
    """Hash of the stage's config sections, the output digests of the stages it needs, and, when
    the stage module defines ``input_digest(config) -> str``, its outside inputs (e.g. the files
    of a local corpus directory)."""
    upstream = {}
    for n in stage.needs:
        rec = _record(run_dir / n)
        upstream[n] = rec["output_digest"] if rec else None
    try:
        extra = getattr(importlib.import_module(stage.target.split(":")[0]), "input_digest", None)
    except ImportError:  # a stage whose module has not landed yet
        extra = None
    inputs = extra(config) if extra is not None else None
    return _digest({"stage": stage.name, "config": {s: to_dict(config.section(s)) for s in stage.sections}, "upstream": upstream, **({"inputs": inputs} if inputs is not None else {})})


def is_current(config: RunConfig, stage: Stage, run_dir: Path) -> bool:
    rec = _record(run_dir / stage.name)
    if rec is None or rec.get("fingerprint") != fingerprint(config, stage, run_dir):
        return False
    return _outputs(run_dir / stage.name) == rec.get("outputs")


def run_stage(config: RunConfig, stage: Stage, run_dir: Path, *, force: bool = False) -> dict[str, Any]:
    """Run one stage unless current; return its completion record (with ``skipped``)."""
    stage_dir = run_dir / stage.name
    if not force and is_current(config, stage, run_dir):
        rec = _record(stage_dir) or {}
        log.info("stage %s: current, skipped", stage.name)
        return {**rec, "skipped": True}
    stage_dir.mkdir(parents=True, exist_ok=True)
    (stage_dir / STAGE_RECORD).unlink(missing_ok=True)
    fp = fingerprint(config, stage, run_dir)
    log.info("stage %s: running", stage.name)
    t0 = time.perf_counter()
    summary = stage.load()(StageContext(config=config, run_dir=run_dir, stage=stage)) or {}
    seconds = time.perf_counter() - t0
    outputs = _outputs(stage_dir)
    rec = {
        "stage": stage.name,
        "fingerprint": fp,
        "seconds": round(seconds, 3),
        "summary": summary,
        "outputs": outputs,
        "output_digest": _digest(outputs),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic.write_json(stage_dir / STAGE_RECORD, rec)
    _update_manifest(run_dir)
    return {**rec, "skipped": False}


def _update_manifest(run_dir: Path) -> None:
    stages = {}
    for s in STAGES:
        rec = _record(run_dir / s.name)
        if rec:
            stages[s.name] = {k: rec[k] for k in ("fingerprint", "seconds", "summary", "outputs", "output_digest", "finished_at")}
    atomic.write_json(run_dir / "manifest.json", {"stages": stages})


def run_pipeline(
    config: RunConfig,
    *,
    until: str | None = None,
    force: tuple[str, ...] = (),
    on_stage: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the chain into ``config.run_dir`` up to and including ``until`` (default: all).

    Writes the resolved ``config.yaml``; returns one completion record per stage.
    Raises KeyError for an unknown ``until``.
    """
    if until is not None:
        _get_stage(until)
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(run_dir / "config.yaml", dump_yaml(config))
    results = []
    for stage in STAGES:
        rec = run_stage(config, stage, run_dir, force=stage.name in force)
        results.append(rec)
        if on_stage is not None:
            on_stage(rec)
        if stage.name == until:
            break
    return results
