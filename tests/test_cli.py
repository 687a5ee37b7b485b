"""The command line: subcommands listed, config errors as one line with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _evmlm(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evmlm", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_help_lists_subcommands() -> None:
    out = _evmlm("--help")
    assert out.returncode == 0
    for cmd in ("run", "corpus", "compile", "show-config"):
        assert cmd in out.stdout


def test_unknown_key_is_one_line_error() -> None:
    out = _evmlm("show-config", "--compile.wokers=2")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines == ["error: compile.wokers: unknown key (known: " + lines[0].split("(known: ")[1]]


def test_show_config_applies_flags() -> None:
    out = _evmlm("show-config", "--config", "configs/quick.yaml", "--run.seed=3")
    assert out.returncode == 0, out.stderr
    assert "seed: 3" in out.stdout and "name: quick" in out.stdout
