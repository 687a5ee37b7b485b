"""The import-linter contracts of pyproject.toml (docs/architecture.md, "Layers") hold for the
package as it is, and break when one import crosses them: ``lint-imports`` (the tool
scripts/test.sh runs) on a copy of the package with that import written into one module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import evmlm

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tmp_path: Path, module: str = "", line: str = "") -> subprocess.CompletedProcess:
    """lint-imports with the project's config on a copy of the package; ``line`` is appended to
    the copy's ``module`` (a path under src/evmlm)."""
    src = tmp_path / "src"
    shutil.copytree(
        Path(evmlm.__file__).parent, src / "evmlm", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if module:
        with open(src / "evmlm" / module, "a", encoding="utf-8") as f:
            f.write(f"\n{line}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    p = _lint(tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "0 broken" in p.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "chain"),
    [
        # a lower layer importing a higher one, at module level and inside a function
        (
            "config.py",
            "import evmlm.cli",
            "Each layer imports only the layers below it",
            "evmlm.config -> evmlm.cli",
        ),
        (
            "dataset/filters.py",
            "def _f():\n    import evmlm.train",
            "Each layer",
            "evmlm.dataset.filters -> evmlm.train",
        ),
        # the lifter reaching for the compiler
        (
            "evm/tac.py",
            "import evmlm.solc",
            "The lifter works on bytecode alone",
            "evmlm.evm.tac -> evmlm.solc",
        ),
        # a data stage loading the training stack
        ("solc/__init__.py", "import torch", "The data stages", "evmlm.solc -> torch"),
        # a cycle inside one layer (the one dataset/records.py removed)
        (
            "dataset/records.py",
            "def _f():\n    from evmlm.dataset import build",
            "No import cycle",
            ".records -> .build",
        ),
    ],
)
def test_an_import_across_a_contract_fails(
    tmp_path: Path, module: str, line: str, contract: str, chain: str
) -> None:
    p = _lint(tmp_path, module, line)
    assert p.returncode == 1, p.stdout + p.stderr
    broken = p.stdout.split("Broken contracts", 1)[1]
    assert contract in broken and chain in broken, broken
