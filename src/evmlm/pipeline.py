"""The ``evmlm run`` chain: stages in order, each skipped when its outputs are current.

A run directory ``runs/<name>/`` holds ``config.yaml`` (the resolved config), one folder per
stage, and ``manifest.json`` (per stage with a completion record: fingerprint, output files
with SHA-256, seconds, summary). A stage's *fingerprint* hashes the config it declares
(:attr:`Stage.sections`: whole sections or single ``section.field``\ s) and the output digests
of the stages it needs; the stage sees only that config (``ctx.config``: any other field
raises :class:`UndeclaredConfigError`), so it cannot read a field its fingerprint does not
cover. ``run.threads`` (how fast, not what) reaches every stage as ``ctx.threads`` and is not
fingerprinted; a stage is skipped when its completion record (``<stage>/_stage.json``) has
the same fingerprint and every recorded output still has its recorded hash. A stage that was
stopped part-way has no completion record and runs again; stages resume internally (compile
cache, training checkpoints), so nothing finished is redone.

A stage function takes a :class:`StageContext` and returns a JSON-able summary dict; it writes
its outputs under ``ctx.stage_dir`` (atomically, file by file).
"""

from __future__ import annotations

import dataclasses
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


class UndeclaredConfigError(RuntimeError):
    """A stage read a config field its :class:`Stage` does not declare (a bug in the stage:
    declare the field, so that the stage's fingerprint covers it)."""


@dataclass(frozen=True)
class Stage:
    """One stage of the chain. ``target`` is ``"module:function"`` (imported lazily);
    ``sections``: the config it reads and its fingerprint covers, each a section name
    (``"pretrain"``) or one field (``"run.seed"``); ``needs``: the stages whose outputs it reads."""

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
    Stage(
        "dataset",
        "evmlm.dataset.stage:run_stage",
        ("dataset", "lift"),
        ("corpus", "compile", "lift"),
    ),
    Stage(
        "tokenizer",
        "evmlm.train.stage:run_tokenizer_stage",
        ("tokenizer", "model.base"),
        ("corpus", "dataset"),
    ),
    Stage(
        "pretrain",
        "evmlm.train.stage:run_pretrain_stage",
        ("pretrain", "run.seed", "model.base"),
        ("corpus", "dataset", "tokenizer"),
    ),
    Stage(
        "cpt",
        "evmlm.train.cpt:run_cpt_stage",
        ("cpt", "model.base"),
        ("corpus", "dataset", "tokenizer", "pretrain"),
    ),
    Stage(
        "finetune",
        "evmlm.train.stage:run_finetune_stage",
        ("finetune", "pretrain.enabled", "run.seed", "model.base", "cpt.enabled"),
        ("dataset", "tokenizer", "pretrain", "cpt"),
    ),
    Stage(
        "evaluate",
        "evmlm.evaluate.stage:run_stage",
        ("evaluate",),
        ("compile", "dataset", "finetune"),
    ),
    Stage("export", "evmlm.export.stage:run_stage", ("export",), ("dataset", "finetune")),
)


class _Undeclared:
    """A config section as a stage sees it when it declares none or only some of its fields:
    a declared field reads as usual, any other raises UndeclaredConfigError."""

    def __init__(self, stage: str, name: str, fields: dict[str, Any]):
        self._stage, self._name, self._fields = stage, name, fields

    def __getattr__(self, field: str) -> Any:
        if field.startswith("__") or field in ("_stage", "_name", "_fields"):
            raise AttributeError(field)
        if field in self._fields:
            return self._fields[field]
        raise UndeclaredConfigError(
            f"stage {self._stage} reads {self._name}.{field}, which its Stage.sections do not "
            "declare (its fingerprint would not cover it); declare it in evmlm.pipeline.STAGES"
        )


def _split(item: str) -> tuple[str, str | None]:
    section, _, field_name = item.partition(".")
    return section, field_name or None


def stage_config(config: RunConfig, stage: Stage) -> RunConfig:
    """``config`` as ``stage`` sees it: its declared sections and fields; every other section
    replaced by a view whose undeclared fields raise UndeclaredConfigError."""
    whole = {sec for sec, f in map(_split, stage.sections) if f is None}
    some: dict[str, dict[str, Any]] = {}
    for sec, f in map(_split, stage.sections):
        if f is not None and sec not in whole:
            some.setdefault(sec, {})[f] = getattr(config.section(sec), f)
    hidden = {
        f.name: _Undeclared(stage.name, f.name, some.get(f.name, {}))
        for f in dataclasses.fields(config)
        if f.name not in whole
    }
    return dataclasses.replace(config, **hidden)


def declared_config(config: RunConfig, stage: Stage) -> dict[str, Any]:
    """The config ``stage`` declares as plain data (``{"pretrain": {...}, "run.seed": 0}``):
    what its fingerprint hashes."""
    out = {}
    for item in stage.sections:
        sec, f = _split(item)
        value = config.section(sec) if f is None else getattr(config.section(sec), f)
        out[item] = (
            to_dict(value) if dataclasses.is_dataclass(value) else json.loads(json.dumps(value))
        )
    return out


@dataclass(frozen=True)
class StageContext:
    """What a stage gets: the config it declares (:func:`stage_config`), its own folder, the
    folders of earlier stages, and ``threads`` (``run.threads``: worker / torch threads)."""

    config: RunConfig
    run_dir: Path
    stage: Stage
    threads: int = 1

    @property
    def stage_dir(self) -> Path:
        return self.run_dir / self.stage.name

    def dir_of(self, stage_name: str) -> Path:
        """Output folder of an earlier stage (must be listed in ``needs`` or before it)."""
        return self.run_dir / stage_name

    def declared(self) -> dict[str, Any]:
        """The declared config as plain data (see :func:`declared_config`), for records."""
        return declared_config(self.config, self.stage)


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
    inputs = extra(stage_config(config, stage)) if extra is not None else None
    return _digest(
        {
            "stage": stage.name,
            "config": declared_config(config, stage),
            "upstream": upstream,
            **({"inputs": inputs} if inputs is not None else {}),
        }
    )


def is_current(config: RunConfig, stage: Stage, run_dir: Path) -> bool:
    rec = _record(run_dir / stage.name)
    if rec is None or rec.get("fingerprint") != fingerprint(config, stage, run_dir):
        return False
    return _outputs(run_dir / stage.name) == rec.get("outputs")


def run_stage(
    config: RunConfig, stage: Stage, run_dir: Path, *, force: bool = False
) -> dict[str, Any]:
    """Run one stage unless current; return its completion record (with ``skipped``)."""
    stage_dir = run_dir / stage.name
    if not force and is_current(config, stage, run_dir):
        rec = _record(stage_dir) or {}
        log.info("stage %s: current, skipped", stage.name)
        return {**rec, "skipped": True}
    stage_dir.mkdir(parents=True, exist_ok=True)
    (stage_dir / STAGE_RECORD).unlink(missing_ok=True)
    _update_manifest(run_dir)  # a stage stopped from here on is no longer listed
    fp = fingerprint(config, stage, run_dir)
    log.info("stage %s: running", stage.name)
    t0 = time.perf_counter()
    ctx = StageContext(
        config=stage_config(config, stage), run_dir=run_dir, stage=stage, threads=config.run.threads
    )
    summary = stage.load()(ctx) or {}
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
    """Rewrite ``manifest.json`` from the completion records present now: a stage whose
    ``_stage.json`` is gone (stopped, removed) is not listed."""
    stages = {}
    for s in STAGES:
        rec = _record(run_dir / s.name)
        if rec:
            stages[s.name] = {
                k: rec[k]
                for k in (
                    "fingerprint",
                    "seconds",
                    "summary",
                    "outputs",
                    "output_digest",
                    "finished_at",
                )
            }
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
    _update_manifest(run_dir)
    results = []
    for stage in STAGES:
        rec = run_stage(config, stage, run_dir, force=stage.name in force)
        results.append(rec)
        if on_stage is not None:
            on_stage(rec)
        if stage.name == until:
            break
    return results
