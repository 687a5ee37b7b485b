"""The run directory: file modes of atomic writes, compile/results pruning, the manifest, and
stages seeing only the config they declare (so a changed ``run.seed`` reruns training)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from evmlm import atomic, pipeline
from evmlm.config import load_config
from evmlm.pipeline import (
    STAGES,
    Stage,
    StageContext,
    UndeclaredConfigError,
    fingerprint,
    stage_config,
)


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after)."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda m: os.umask(m)
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize(("mask", "want"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mask, want):
    umask(mask)
    atomic.write_text(tmp_path / "a.txt", "x")
    atomic.write_json(tmp_path / "sub" / "b.json", {"k": 1})
    with atomic.atomic_path(tmp_path / "c.bin") as tmp:
        tmp.write_bytes(b"\0")
    for name in ("a.txt", "sub/b.json", "c.bin"):
        assert _mode(tmp_path / name) == want, name
    assert _mode(atomic.make_temp_dir(tmp_path, "d")) == 0o777 & ~mask
    assert [p for p in tmp_path.rglob(".*.tmp") if not p.is_dir()] == []  # no temporary file left


def test_etherscan_sources_folder_respects_the_umask(tmp_path, umask):
    from evmlm.corpus.etherscan import write_sources

    umask(0o022)
    write_sources({"contracts/A.sol": "contract A {}"}, tmp_path / "out" / "0xabc", "0xabc")
    assert (
        _mode(tmp_path / "out" / "0xabc") == 0o755
        and _mode(tmp_path / "out" / "0xabc" / "contracts" / "A.sol") == 0o644
    )


# ------------------------------------------------------------------ compile/results pruning


def test_compile_results_hold_only_what_the_index_names(tmp_path, monkeypatch, umask):
    from evmlm.solc.stage import read_index

    umask(0o022)
    monkeypatch.setenv("EVMLM_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "A.sol").write_text(
        "pragma solidity ^0.8.0;\ncontract A { uint256 public x; function set(uint256 v) external { x = v; } }\n"
    )
    cfg = load_config(
        None,
        {
            "run.runs_dir": str(tmp_path / "runs"),
            "run.name": "t",
            "corpus.sources": ["dir"],
            "corpus.directory": str(src),
            "compile.settings": ["noopt"],
            "compile.workers": 1,
        },
    )
    results = cfg.run_dir / "compile" / "results"
    results.mkdir(parents=True)
    stray = results / ("ab" * 32 + ".json.gz")  # left by an interrupted run with another corpus
    stray.write_bytes(b"stale")
    (results / ".old.json.gz.tmp").write_bytes(b"half")
    recs = pipeline.run_pipeline(cfg, until="compile")
    ok = {r["key"] for r in read_index(cfg.run_dir / "compile") if r["status"] == "ok"}
    assert len(ok) == 1
    assert sorted(p.name for p in results.iterdir()) == [f"{k}.json.gz" for k in sorted(ok)]
    outputs = recs[-1]["outputs"]
    assert not any(
        k.startswith("results/") and k[len("results/") : -len(".json.gz")] not in ok
        for k in outputs
    )
    assert all(_mode(p) == 0o644 for p in results.iterdir())


# ------------------------------------------------------------------ the manifest

CALLS: list[str] = []


def first_stage(ctx: StageContext) -> dict:
    CALLS.append("first")
    (ctx.stage_dir / "out.txt").write_text(f"seed={ctx.config.run.seed}\n")
    return {}


def second_stage(ctx: StageContext) -> dict:
    CALLS.append("second")
    if (ctx.run_dir / "FAIL").exists():
        raise RuntimeError("stopped")
    (ctx.stage_dir / "copy.txt").write_text((ctx.dir_of("first") / "out.txt").read_text())
    return {}


def sneaky_stage(ctx: StageContext) -> dict:
    return {
        "threads": ctx.threads,
        "seed": ctx.config.run.seed,
        "workers": ctx.config.compile.workers,
    }


@pytest.fixture
def chain(monkeypatch):
    CALLS.clear()
    monkeypatch.setattr(
        pipeline,
        "STAGES",
        (
            Stage("first", f"{__name__}:first_stage", ("run.seed",), ()),
            Stage("second", f"{__name__}:second_stage", ("compile",), ("first",)),
        ),
    )


def _cfg(tmp_path: Path, **over: object):
    return load_config(None, {"run.runs_dir": str(tmp_path), "run.name": "t", **over})


def _listed(tmp_path: Path) -> set[str]:
    return set(json.loads((tmp_path / "t" / "manifest.json").read_text())["stages"])


def test_manifest_lists_only_stages_with_a_completion_record(chain, tmp_path):
    pipeline.run_pipeline(_cfg(tmp_path))
    assert _listed(tmp_path) == {"first", "second"}
    (tmp_path / "t" / "FAIL").write_text("")
    with pytest.raises(RuntimeError):  # second is stopped part-way: its record is gone
        pipeline.run_pipeline(_cfg(tmp_path), force=("second",))
    assert _listed(tmp_path) == {"first"}
    (tmp_path / "t" / "FAIL").unlink()
    (tmp_path / "t" / "first" / pipeline.STAGE_RECORD).unlink()  # removed by hand
    pipeline.run_pipeline(_cfg(tmp_path), until="first")
    assert _listed(tmp_path) == {"first"}
    pipeline.run_pipeline(_cfg(tmp_path))
    assert _listed(tmp_path) == {"first", "second"}


# ------------------------------------------------------------------ declared config


def test_a_stage_sees_only_the_config_it_declares(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, **{"run.seed": 3, "run.threads": 2})
    view = stage_config(cfg, Stage("x", "m:f", ("pretrain", "run.seed"), ()))
    assert view.run.seed == 3 and view.pretrain == cfg.pretrain
    for read in (
        lambda: view.run.threads,
        lambda: view.run.name,
        lambda: view.compile.workers,
        lambda: view.run_dir,
    ):
        with pytest.raises(UndeclaredConfigError, match="declare"):
            read()
    monkeypatch.setattr(
        pipeline, "STAGES", (Stage("sneaky", f"{__name__}:sneaky_stage", ("run.seed",), ()),)
    )
    with pytest.raises(UndeclaredConfigError, match="sneaky reads compile.workers"):
        pipeline.run_pipeline(cfg)
    monkeypatch.setattr(
        pipeline,
        "STAGES",
        (Stage("sneaky", f"{__name__}:sneaky_stage", ("run.seed", "compile.workers"), ()),),
    )
    rec = pipeline.run_pipeline(cfg)[0]
    assert rec["summary"] == {"threads": 2, "seed": 3, "workers": cfg.compile.workers}


def test_run_seed_changes_the_training_fingerprints(tmp_path):
    """pretrain and finetune read run.seed: a new seed must rerun them (and only what reads it)."""
    a, b = _cfg(tmp_path), _cfg(tmp_path, **{"run.seed": 7})
    changed = {
        s.name
        for s in STAGES
        if fingerprint(a, s, tmp_path / "t") != fingerprint(b, s, tmp_path / "t")
    }
    assert changed == {"pretrain", "finetune"}
    threads = _cfg(tmp_path, **{"run.threads": 1})
    assert all(
        fingerprint(a, s, tmp_path / "t") == fingerprint(threads, s, tmp_path / "t") for s in STAGES
    )


def test_dataset_hf_folder_respects_the_umask(tmp_path, umask):
    from evmlm.dataset.export import export

    umask(0o022)
    records = [
        {"id": f"r{i}", "split": s, "tac": "x", "solidity": "y"}
        for i, s in enumerate(["train", "validation", "test"])
    ]
    export(records, tmp_path)  # fields a record lacks are written as null
    assert _mode(tmp_path / "hf") == 0o755 and _mode(tmp_path / "pairs.jsonl") == 0o644
