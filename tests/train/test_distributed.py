"""The multi-process path: 2 CPU processes, DDP over gloo (torchrun), pretrain + LoRA fine-tune."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_two_process_gloo_ddp(tmp_path: Path) -> None:
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29533",
            str(worker),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r in ranks:
        assert r["world_size"] == 2 and r["backend"] == "gloo"
        assert r["pretrain_steps"] == 4 and r["finetune_steps"] == 3
    # one model, written once by rank 0; the adapter merged into it
    assert (tmp_path / "pretrain" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "finetune" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "finetune" / "model" / "model.safetensors").is_file()
