from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evmlm.config import ConfigError, PretrainConfig, load_config
from evmlm.train.data import write_token_file


def _data(tmp: Path, tokenizer: Any, sources: list[tuple[str, str]]) -> Path:
    d = tmp / "data"
    write_token_file([t for _, t in sources[:-3]], tokenizer, d / "train.bin")
    write_token_file([t for _, t in sources[-3:]], tokenizer, d / "val.bin")
    return d


def test_pretrain_tiny_then_resume(
    tmp_path: Path, tokenizer: Any, sources: list[tuple[str, str]]
) -> None:
    from evmlm.train.pretrain import pretrain

    data = _data(tmp_path, tokenizer, sources)
    cfg = PretrainConfig(
        preset="tiny",
        context_length=64,
        batch_size=4,
        max_steps=10,
        warmup_steps=2,
        logging_steps=2,
        eval_steps=5,
        save_steps=5,
        eval_batches=2,
        time_budget_s=None,
        bf16=False,
    )
    r = pretrain(cfg, tokenizer=tokenizer, data_dir=data, out_dir=tmp_path / "run", threads=None)
    assert (
        r.steps == 10
        and r.resumed_from is None
        and r.val_loss is not None
        and r.tokens_per_second > 0
    )
    model_dir = tmp_path / "run" / "model"
    names = {p.name for p in model_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "training_info.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)  # safetensors only
    assert (
        json.loads((model_dir / "training_info.json").read_text())["pretrain"]["preset"] == "tiny"
    )
    assert (tmp_path / "run" / "loss_curve.png").stat().st_size > 1000
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    # the val loss is below the uniform-distribution loss ln(V) after 10 steps
    import math

    assert r.val_loss < math.log(len(tokenizer))

    from dataclasses import replace

    r2 = pretrain(
        replace(cfg, max_steps=14),
        tokenizer=tokenizer,
        data_dir=data,
        out_dir=tmp_path / "run",
        threads=None,
    )
    assert (
        r2.resumed_from is not None and r2.resumed_from.endswith("checkpoint-10") and r2.steps == 14
    )


def test_tensorboard_has_throughput_and_grad_norm(
    tmp_path: Path, tokenizer: Any, sources: list[tuple[str, str]]
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from evmlm.train.pretrain import pretrain

    data = _data(tmp_path, tokenizer, sources)
    cfg = PretrainConfig(
        preset="tiny",
        context_length=64,
        batch_size=4,
        max_steps=6,
        warmup_steps=1,
        logging_steps=2,
        eval_steps=3,
        save_steps=6,
        eval_batches=1,
        time_budget_s=None,
    )
    pretrain(cfg, tokenizer=tokenizer, data_dir=data, out_dir=tmp_path / "run", threads=None)
    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {
        "train/loss",
        "train/learning_rate",
        "train/grad_norm",
        "train/tokens_per_second",
        "eval/loss",
    } <= tags
    assert all(e.value > 0 for e in acc.Scalars("train/tokens_per_second"))


def test_pretrain_config_errors_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="pretrain.batch_size"):
        load_config(None, ["--pretrain.batch_size=0"])
    with pytest.raises(ConfigError, match="finetune.save_steps"):
        load_config(None, ["--finetune.eval_steps=7", "--finetune.save_steps=10"])
    with pytest.raises(ConfigError, match="finetune.lora_targets"):
        load_config(None, ["--finetune.lora_targets=ffn"])


def test_unknown_preset() -> None:
    from evmlm.errors import EvmlmError
    from evmlm.models import PRESETS, build_model

    with pytest.raises(EvmlmError, match="tiny, small"):
        build_model("huge", 1000)
    assert {"tiny", "small", "base"} <= set(PRESETS)


def test_effective_threads_drops_to_one_when_oversubscribed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from evmlm.train import threads
    from evmlm.train.threads import effective_threads

    cores = os.cpu_count() or 1
    monkeypatch.setattr(threads, "runnable_competitors", lambda: float(cores))
    assert effective_threads(2) == 1
    monkeypatch.setattr(threads, "runnable_competitors", lambda: 0.0)
    assert effective_threads(2) == 2 and effective_threads(1) == 1
    # without /proc: the 1-minute load average
    monkeypatch.setattr(threads, "runnable_competitors", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 5.0, 0.0, 0.0))
    assert effective_threads(2) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert effective_threads(2) == 2


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc")
def test_runnable_pids_counts_busy_processes_at_our_priority_only() -> None:
    """Real busy processes: one at our nice value counts, one at nice 19 does not."""
    import os
    import subprocess
    import sys
    import time

    from evmlm.train.threads import runnable_pids

    if os.nice(0) >= 19:
        pytest.skip("this test runs at nice 19 already: nothing can be of lower priority")
    busy = [sys.executable, "-c", "while True: pass"]
    same = subprocess.Popen(busy)
    low = subprocess.Popen(["nice", "-n", "19", *busy])
    try:
        time.sleep(0.3)
        seen: set[int] = set()
        for _ in range(10):  # a busy loop is runnable (R) whether or not it is on a core
            seen |= set(runnable_pids(Path("/proc"), os.getpid(), os.nice(0)) or [])
            time.sleep(0.02)
        assert same.pid in seen
        assert low.pid not in seen
        assert runnable_pids(Path("/nonexistent"), os.getpid(), 0) is None
    finally:
        same.kill()
        low.kill()
        same.wait()
        low.wait()
