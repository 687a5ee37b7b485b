"""Every subcommand x {missing argument, unknown option, bad value, missing path, corrupt file}:
one line on stderr, exit status 2, no traceback, and nothing expensive done first.

Driven through :func:`evmlm.cli.run_cli` (the body of the ``evmlm`` entry point) in-process for
speed, plus subprocess runs of ``python -m evmlm`` for the installed entry point.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evmlm.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
PIGGY = ROOT / "tests" / "fixtures" / "evaluate" / "Piggy.sol"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, make_tiny_model) -> dict[str, Path]:
    """Inputs for the matrix: a missing path, corrupt files of each kind, a good tiny model."""
    d = tmp_path_factory.mktemp("cli_inputs")
    model = make_tiny_model(PIGGY.read_text())
    corrupt_model = d / "corrupt_model"
    shutil.copytree(model, corrupt_model)
    w = corrupt_model / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])  # truncated download
    no_tok = d / "no_tokenizer"
    no_tok.mkdir()
    for f in ("config.json", "generation_config.json", "model.safetensors"):
        if (model / f).exists():
            shutil.copy(model / f, no_tok / f)
    binary = d / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    recursive = d / "recursive.yaml"
    recursive.write_text("a: &a [*a]\n")
    truncated = d / "artifact.json"
    truncated.write_text('{"deployedBytecode": "0x6080604052", "abi": [')
    return {
        "missing": d / "does-not-exist",
        "model": model,
        "corrupt_model": corrupt_model,
        "no_tokenizer": no_tok,
        "binary": binary,
        "recursive": recursive,
        "truncated": truncated,
        "dir": d,
    }


@pytest.fixture(autouse=True)
def _keep_logging() -> None:
    """run_cli configures the root logger (as the entry point does); restore it afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


# (command words, case) -> (extra arguments; {} placeholders name fixture files), and a word the
# one-line message must contain. Commands that read the run config share the config cases.
CONFIG_COMMANDS = [
    ["run"],
    ["corpus"],
    ["compile"],
    ["show-config"],
    ["dataset", "build"],
    ["dataset", "stats"],
    ["tokenizer", "train"],
    ["pretrain"],
    ["finetune"],
    ["evaluate"],
]
CONFIG_CASES = {
    "missing argument": (["--config"], "requires an argument"),
    "unknown option": (["--bogus"], "--bogus"),
    "bad value": (["--name", ".."], "run.name"),
    "missing path": (["--config", "{missing}"], "not found"),
    "corrupt file": (["--config", "{binary}"], "binary.yaml"),
}
OTHER = {
    ("lift",): {
        "missing argument": ([], "bytecode"),
        "unknown option": (["0x6000", "--bogus"], "--bogus"),
        "bad value": (["0x6000", "--format", "xml"], "--format"),
        "missing path": (["{missing}"], "does-not-exist"),
        "corrupt file": (["{truncated}"], "artifact.json"),
    },
    ("decompile",): {
        "missing argument": ([], "source"),  # --model is optional: the draft alone
        "unknown option": (["0x6000", "-m", "{model}", "--bogus"], "--bogus"),
        "bad value": (["0x6000", "-m", "{model}", "--format", "xml"], "--format"),
        "missing path": (["0x6000", "-m", "{missing}"], "does-not-exist"),
        "corrupt file": (["0x6000", "-m", "{corrupt_model}"], "model.safetensors"),
    },
    ("sample",): {
        "missing argument": (["-p", "x"], "--model"),
        "unknown option": (["-m", "{model}", "-p", "x", "--bogus"], "--bogus"),
        "bad value": (["-m", "{model}", "-p", "x", "--max-tokens", "abc"], "--max-tokens"),
        "missing path": (["-m", "{missing}", "-p", "x"], "does-not-exist"),
        "corrupt file": (["-m", "{corrupt_model}", "-p", "x"], "model.safetensors"),
    },
    ("evaluate",): {  # with --model: checked before the chain runs
        "missing argument": (["--model"], "requires an argument"),
        "unknown option": (["--model", "{model}", "--bogus"], "--bogus"),
        "bad value": (["--model", "{model}", "--split", "bogus"], "evaluate.split"),
        "missing path": (["--model", "{missing}"], "does-not-exist"),
        "corrupt file": (["--model", "{corrupt_model}"], "model.safetensors"),
    },
    ("etherscan",): {  # flags are taken as addresses today (the etherscan command's own issue),
        # so the line may name the missing API key instead of the flag: no word checked there
        "missing argument": (["--out"], "requires an argument"),
        "unknown option": (["--bogus"], ""),
        "bad value": (["--corpus.etherscan_workers=0"], ""),
        "missing path": (["--config", "{missing}"], "not found"),
        "corrupt file": (["--config", "{recursive}"], "recursive.yaml"),
    },
    ("dataset", "signatures"): {
        "missing argument": (["--db"], "requires an argument"),
        "unknown option": (["--bogus"], "--bogus"),
        "bad value": (["0x1234", "--collisions", "--db"], "requires an argument"),
        "missing path": (["0xa9059cbb", "--db", "{missing}"], "does-not-exist"),
        "corrupt file": (["0xa9059cbb", "--db", "{binary}"], "binary.yaml"),
    },
    ("run",): {
        "bad value": (["--until", "bogus"], "--until"),
    },
}
CASES = [
    (tuple(c), case, args, word)
    for c in CONFIG_COMMANDS
    for case, (args, word) in CONFIG_CASES.items()
]
CASES += [
    (c, case, args, word) for c, cases in OTHER.items() for case, (args, word) in cases.items()
]
CASE_IDS = [
    " ".join(c) + ": " + case + ("" if (c, case) not in [(x[0], x[1]) for x in CASES[:i]] else " 2")
    for i, (c, case, _, _) in enumerate(CASES)
]


@pytest.mark.parametrize(("command", "case", "args", "word"), CASES, ids=CASE_IDS)
def test_usage_errors_are_one_line_exit_2(
    command: tuple[str, ...],
    case: str,
    args: list[str],
    word: str,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # no configs/default.yaml: nothing of the repo's runs is touched

    def expensive(*a: object, **k: object) -> None:
        raise AssertionError(f"{argv}: a pipeline stage started before the error")

    monkeypatch.setattr("evmlm.pipeline.run_stage", expensive)
    monkeypatch.setenv("EVMLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ETHERSCAN_API_KEY", raising=False)  # never reach the real API
    argv = [*command, *(a.format(**{k: str(v) for k, v in files.items()}) for a in args)]
    t0 = time.perf_counter()
    status = run_cli(argv)
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and word in lines[0], err
    assert seconds < 20, f"{argv}: {seconds:.1f} s before the error (expensive work first?)"
    assert not (tmp_path / "runs").exists() or case != "bad value", "a run directory was made"


@pytest.mark.parametrize(
    "args",
    [
        ["lift"],
        ["lift", "0x6000", "--bogus"],
        ["sample", "-m", "x", "-p", "y", "--max-tokens", "abc"],
        ["bogus"],
        ["decompile", "0x6000", "-m", "{missing}"],
        ["show-config", "--config", "{binary}"],
    ],
    ids=[
        "missing argument",
        "unknown option",
        "bad value",
        "unknown command",
        "missing path",
        "corrupt file",
    ],
)
def test_entry_point_subprocess(args: list[str], files: dict[str, Path]) -> None:
    """``python -m evmlm`` (the installed entry point), as a user runs it."""
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    r = subprocess.run(
        [sys.executable, "-m", "evmlm", *argv],
        check=False,
        cwd=files["dir"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: "), r.stderr
    assert r.stdout == ""
