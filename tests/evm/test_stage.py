"""The lift stage through the run chain: real corpus -> real solc-js compile -> lift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evmlm.config import load_config
from evmlm.evm.stage import iter_lifted
from evmlm.pipeline import run_pipeline

SOURCES = Path(__file__).parent / "sources"


@pytest.fixture(autouse=True)
def _private_compile_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVMLM_CACHE_DIR", str(tmp_path / "cache"))


def _config(tmp_path: Path, **extra: object):  # type: ignore[no-untyped-def]
    root = tmp_path / "src"
    root.mkdir()
    for name in ("Features.sol", "Features7.sol"):
        (root / name).write_text((SOURCES / name).read_text())
    return load_config(
        None,
        {
            "run.runs_dir": str(tmp_path / "runs"),
            "run.name": "t",
            "corpus.sources": ["dir"],
            "corpus.directory": str(root),
            "compile.settings": ["opt200"],
            "compile.workers": 1,
            **extra,
        },
    )


def test_lift_stage_writes_resumable_shards(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    recs = run_pipeline(cfg, until="lift")
    lift = recs[-1]
    assert lift["stage"] == "lift" and not lift["skipped"]
    s = lift["summary"]
    assert s["contracts"] == 2 and s["lifted"] == 2 and s["failures"] == 0
    assert (
        s["functions"]["public"] == 6 + 11
        and s["functions"]["receive"] == 2
        and s["functions"]["fallback"] == 2
    )
    assert "2/2 contracts lifted" in s["line"] and "0 unresolved jumps" in s["line"]
    got = {name: lc for _key, _path, name, lc in iter_lifted(cfg.run_dir / "lift")}
    assert set(got) == {"Features", "Features7"}
    assert got["Features"].function("0xa9059cbb") is None and got["Features"].function(
        "0x095ea7b3"
    ).tac.startswith("function 0x095ea7b3 approve(address,uint256)")
    # A second run is skipped; a lost shard is rebuilt alone on a forced rerun (resume).
    assert run_pipeline(cfg, until="lift")[-1]["skipped"]
    shards = sorted((cfg.run_dir / "lift" / "shards").glob("*.jsonl.gz"))
    shards[0].unlink()
    again = run_pipeline(cfg, until="lift", force=("lift",))[-1]["summary"]
    assert again["results_reused"] == len(shards) - 1 and again["lifted"] == 2


def test_lift_stage_records_partial_lifts_past_the_budget(tmp_path: Path) -> None:
    """A contract past its node budget is lifted partially and recorded as such, not dropped."""
    cfg = _config(tmp_path, **{"lift.max_nodes": 20})
    s = run_pipeline(cfg, until="lift")[-1]["summary"]
    assert s["failures"] == 0 and s["lifted"] == 2 and s["partial"] == 2
    assert "2 partial (budget)" in s["line"]
    got = {name: lc for _key, _path, name, lc in iter_lifted(cfg.run_dir / "lift")}
    assert set(got) == {"Features", "Features7"}
    assert all(
        lc.partial and "node budget (20)" in lc.partial and lc.n_nodes == 20 for lc in got.values()
    )
    assert json.loads((cfg.run_dir / "lift" / "summary.json").read_text())["partial"] == 2
