"""evmlm installed as a plain (non-editable) package: nothing resolves a path from the install
location. The package is copied into a site-packages folder of a temporary tree and imported
from there by a fresh interpreter whose working directory is a project folder elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import evmlm
from evmlm.evaluate.baselines import panoramix

PROBE = """
import json, sys
import evmlm
from evmlm.dataset.build import _resolve_dir
from evmlm.evaluate.baselines import panoramix
out = {"package": evmlm.__file__, "artifacts": str(_resolve_dir("vendor/not-here").resolve())}
if len(sys.argv) > 1:  # a real Panoramix run (of STOP) writes its cache
    out["decompiled"] = panoramix.decompile_panoramix("00", timeout_s=120)
else:
    out["panoramix_cache"] = str(panoramix.cache_dir().resolve())
print(json.dumps(out))
"""


def _installed_copy(tmp_path: Path) -> tuple[Path, Path]:
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    shutil.copytree(
        Path(evmlm.__file__).parent, site / "evmlm", ignore=shutil.ignore_patterns("__pycache__")
    )
    project = tmp_path / "work" / "project"
    project.mkdir(parents=True)
    return site, project


def _probe(site: Path, project: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    p = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_relative_folders_resolve_in_the_project_not_the_install_tree(tmp_path: Path) -> None:
    site, project = _installed_copy(tmp_path)
    out = _probe(site, project)
    assert Path(out["package"]).resolve() == (site / "evmlm" / "__init__.py").resolve()
    # the old Path(__file__).parents[N] put these under tmp_path/venv/lib/...
    assert Path(out["artifacts"]) == project.resolve() / "vendor" / "not-here"
    assert Path(out["panoramix_cache"]) == project.resolve() / ".cache" / "panoramix"


def test_panoramix_cache_is_written_in_the_project(tmp_path: Path, monkeypatch) -> None:
    if not panoramix.is_available():
        pytest.skip("run scripts/setup_panoramix.sh (scripts/setup.sh does)")
    monkeypatch.setenv("EVMLM_PANORAMIX_PYTHON", str(panoramix.panoramix_python()))
    site, project = _installed_copy(tmp_path)
    out = _probe(site, project, "run")
    assert isinstance(out["decompiled"], dict)
    assert (project / ".cache" / "panoramix").is_dir()
    assert not any(p.name == ".cache" for p in (tmp_path / "venv").rglob(".cache"))
