"""The run chain: stages run in order, are skipped when current, and resume after a stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evmlm import pipeline
from evmlm.config import load_config
from evmlm.pipeline import Stage, StageContext

CALLS: list[str] = []


def first_stage(ctx: StageContext) -> dict:
    CALLS.append("first")
    (ctx.stage_dir / "out.txt").write_text(f"seed={ctx.config.run.seed}\n")
    return {"line": "wrote out.txt"}


def second_stage(ctx: StageContext) -> dict:
    CALLS.append("second")
    text = (ctx.dir_of("first") / "out.txt").read_text()
    if (ctx.stage_dir.parent / "FAIL").exists():
        raise RuntimeError("stopped")
    (ctx.stage_dir / "copy.txt").write_text(text.upper())
    return {}


@pytest.fixture
def chain(monkeypatch: pytest.MonkeyPatch) -> None:
    CALLS.clear()
    monkeypatch.setattr(
        pipeline,
        "STAGES",
        (
            Stage("first", f"{__name__}:first_stage", ("run",), ()),
            Stage("second", f"{__name__}:second_stage", ("compile",), ("first",)),
        ),
    )


def _cfg(tmp_path: Path, **over: object):
    return load_config(None, {"run.runs_dir": str(tmp_path), "run.name": "t", **over})


def test_runs_then_skips(chain: None, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    recs = pipeline.run_pipeline(cfg)
    assert [r["skipped"] for r in recs] == [False, False]
    assert (tmp_path / "t" / "second" / "copy.txt").read_text() == "SEED=0\n"
    assert (tmp_path / "t" / "config.yaml").is_file()
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"first", "second"}
    assert manifest["stages"]["second"]["outputs"].keys() == {"copy.txt"}
    recs = pipeline.run_pipeline(cfg)
    assert [r["skipped"] for r in recs] == [True, True]
    assert CALLS == ["first", "second"]


def test_config_change_reruns_stage_and_dependents(chain: None, tmp_path: Path) -> None:
    pipeline.run_pipeline(_cfg(tmp_path))
    CALLS.clear()
    # compile.workers is read only by "second": "first" stays current.
    pipeline.run_pipeline(_cfg(tmp_path, **{"compile.workers": 1}))
    assert CALLS == ["second"]
    CALLS.clear()
    # run.seed changes first's output, so second reruns because its input digest changed.
    pipeline.run_pipeline(_cfg(tmp_path, **{"compile.workers": 1, "run.seed": 5}))
    assert CALLS == ["first", "second"]
    assert (tmp_path / "t" / "second" / "copy.txt").read_text() == "SEED=5\n"


def test_stopped_run_restarts_where_it_stopped(chain: None, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    (tmp_path / "t").mkdir(parents=True)
    (tmp_path / "t" / "FAIL").write_text("")
    with pytest.raises(RuntimeError):
        pipeline.run_pipeline(cfg)
    assert not (tmp_path / "t" / "second" / pipeline.STAGE_RECORD).exists()
    (tmp_path / "t" / "FAIL").unlink()
    CALLS.clear()
    recs = pipeline.run_pipeline(cfg)
    assert CALLS == ["second"]
    assert [r["skipped"] for r in recs] == [True, False]


def test_edited_output_is_not_current(chain: None, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    pipeline.run_pipeline(cfg)
    (tmp_path / "t" / "first" / "out.txt").write_text("tampered\n")
    CALLS.clear()
    pipeline.run_pipeline(cfg)
    # first reruns and restores its output; second's input digest is then unchanged.
    assert CALLS == ["first"]
    assert (tmp_path / "t" / "first" / "out.txt").read_text() == "seed=0\n"


def test_until_and_unknown_stage(chain: None, tmp_path: Path) -> None:
    recs = pipeline.run_pipeline(_cfg(tmp_path), until="first")
    assert [r["stage"] for r in recs] == ["first"]
    with pytest.raises(KeyError, match="unknown stage"):
        pipeline.run_pipeline(_cfg(tmp_path), until="nope")
