from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _evmlm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "evmlm", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_signatures_command_imports_looks_up_and_writes(tmp_path):
    src = tmp_path / "4byte.tsv"
    src.write_text("0xa9059cbb\ttransfer(address,uint256)\n0x095ea7b3\tapprove(address,uint256)\n")
    p = _evmlm(
        "dataset",
        "signatures",
        "0xa9059cbb",
        "0x12345678",
        "--import",
        str(src),
        "--out",
        str(tmp_path / "db.tsv"),
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert "0xa9059cbb\ttransfer(address,uint256)" in p.stdout
    assert "0x12345678\t(unknown)" in p.stdout
    assert (tmp_path / "db.tsv").read_text().splitlines() == [
        "0x095ea7b3\tapprove(address,uint256)",
        "0xa9059cbb\ttransfer(address,uint256)",
    ]


def test_stats_without_a_build_is_a_one_line_error(tmp_path):
    p = _evmlm("dataset", "stats", "--name", "nothing", cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "error: runs/nothing/dataset: no stats.json; run `evmlm dataset build` first"
    ]
