"""Interrupting ``evmlm run`` while it compiles: Ctrl-C exits 130 with one line and leaves no
``node`` solc worker; a SIGKILLed run's workers exit by themselves (no orphans)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def _sources(folder: Path, n: int = 80) -> Path:
    """``n`` distinct contracts (25 functions each): one 40-file solc batch takes seconds."""
    folder.mkdir()
    for i in range(n):
        fns = "\n".join(
            f"    function f{j}(uint256 a, uint256 b) external returns (uint256) "
            f"{{ s[a] += b * {i * 100 + j}; emit E(a, s[a]); return s[a] % (b + 1); }}"
            for j in range(25)
        )
        (folder / f"C{i}.sol").write_text(
            "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
            f"contract C{i} {{\n    event E(uint256, uint256);\n"
            f"    mapping(uint256 => uint256) s;\n{fns}\n}}\n"
        )
    return folder


def _start_compiling(tmp_path: Path) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    """Start ``evmlm run --until compile`` on fresh sources (empty compile cache) and return it
    with its ``node`` workers once they are compiling."""
    src = _sources(tmp_path / "src")
    env = {**os.environ, "EVMLM_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evmlm",
            "run",
            "--corpus.sources=[dir]",
            f"--corpus.directory={src}",
            f"--run.runs_dir={tmp_path / 'runs'}",
            "--until",
            "compile",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    workers: list[psutil.Process] = []
    while not workers and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        try:
            workers = [
                c for c in psutil.Process(proc.pid).children(recursive=True) if c.name() == "node"
            ]
        except psutil.Error:
            pass
    assert workers, "no node worker started"
    time.sleep(1.5)  # the first batch is being compiled
    assert proc.poll() is None, "the run ended before it could be interrupted"
    return proc, workers


def _still_running(workers: list[psutil.Process]) -> list[psutil.Process]:
    return [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]


def test_ctrl_c_exits_130_and_leaves_no_child_process(tmp_path: Path) -> None:
    proc, workers = _start_compiling(tmp_path)
    children = psutil.Process(proc.pid).children(recursive=True)  # workers and anything else
    assert {w.pid for w in workers} <= {c.pid for c in children}
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    seconds = time.monotonic() - t0
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert "run directory" not in out  # it did not carry on to the end
    assert seconds < 10, f"took {seconds:.1f} s to stop"
    assert _still_running(children) == []


def test_killed_run_leaves_no_orphan_worker(tmp_path: Path) -> None:
    proc, workers = _start_compiling(tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 8  # a batch compile takes longer: the worker did not wait for it
    while _still_running(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _still_running(workers)
    for w in left:  # do not leave them behind if the test fails
        w.kill()
    assert left == [], f"{len(left)} node worker(s) outlived the killed run"


def test_interrupt_outside_compile_is_130(make_tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C while the CLI is doing anything else (here: waiting on a JSON-RPC node that never
    answers) also exits 130 with one line."""
    import socket

    model = make_tiny_model("contract A { function f() external {} }")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(60)
    url = f"http://127.0.0.1:{srv.getsockname()[1]}/"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evmlm",
            "decompile",
            "0x" + "ab" * 20,
            "--model",
            str(model),
            "--rpc-url",
            url,
        ],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        conn, _ = srv.accept()  # the request arrived: the CLI is waiting for the answer
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        conn.close()
    finally:
        srv.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and err.strip().splitlines() == ["interrupted"], err
