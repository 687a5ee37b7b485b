"""Overhead of the gradient-norm callback: fine-tuning step time with it (every 10 steps) vs not.

Both arms run `evmlm.train.finetune.finetune` on the same real OpenZeppelin pairs
(tests/fixtures/train) from the same randomly initialised model (preset `--preset`, default
`small`, ~4M parameters) with the same seed and config; the only difference is
`finetune.grad_norm_steps` (10 vs off). Step time is measured between consecutive
`on_step_end` calls (so it includes the callback's hook registration, the hooks inside
backward, the norm read-out and the TensorBoard write; it excludes the step-0 evaluation), as
process CPU time (`time.process_time`, with `--threads 1` by default: on a shared, loaded
machine wall time varies by 3x between identical runs, CPU time of a single-threaded process
does not) and as wall time. Each arm runs `--repeats` times, interleaved; the median over
repeats of each run's mean step time is reported; the ratio is against the run without the
callback (goal: <= 1.05). A smaller model is the harder case (the hooks' cost is per tensor,
not per FLOP): `--preset tiny` bounds the overhead from above.

    .venv/bin/python benchmarks/grad_norms.py [--steps 40] [--repeats 3] [--preset small|tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "train"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--method", choices=("lora", "full"), default="lora")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    import torch
    from transformers import TrainerCallback

    from evmlm.config import FinetuneConfig
    from evmlm.models import build_model
    from evmlm.train.finetune import finetune
    from evmlm.train.tokenizer import train_tokenizer

    torch.set_num_threads(a.threads)
    pairs = [
        json.loads(x) for x in (FIXTURES / "pairs.jsonl").read_text().splitlines() if x.strip()
    ]
    sources = [p.read_text() for p in sorted((FIXTURES / "sources").glob("*.sol"))]
    tok = train_tokenizer(
        sources + [r["tac"] for r in pairs] + [r["solidity"] for r in pairs], 1024
    )
    tmp = Path(tempfile.mkdtemp(prefix="grad_norm_bench_"))
    base = tmp / "base"
    model = build_model(
        a.preset, len(tok), seed=0, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(str(base))
    tok.save_pretrained(str(base))
    train = [r for r in pairs if r["split"] == "train"]
    val = [r for r in pairs if r["split"] == "validation"]
    cfg = FinetuneConfig(
        method=a.method,
        max_length=256,
        batch_size=4,
        max_steps=a.steps,
        epochs=100,
        eval_steps=10 * a.steps,
        save_steps=10 * a.steps,
        logging_steps=10,
        warmup_steps=2,
        time_budget_s=None,
        early_stopping_patience=None,
        bf16=True,
        max_eval_examples=2,
    )

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.t: list[tuple[float, float]] = []

        def on_step_end(self, args, state, control, **kw):
            self.t.append((time.process_time(), time.perf_counter()))

    arms = ("without callback", f"every {a.every} steps")
    results: dict[str, list[float]] = {arm: [] for arm in arms}
    walls: dict[str, list[float]] = {arm: [] for arm in arms}
    for rep in range(a.repeats):
        for arm, every in (("without callback", None), (f"every {a.every} steps", a.every)):
            timer = StepTimer()
            out = tmp / f"{rep}-{every}"
            finetune(
                replace(cfg, grad_norm_steps=every),
                base_model=base,
                train_records=train,
                eval_records=val,
                out_dir=out,
                seed=0,
                resume=False,
                callbacks=[timer],
            )
            pairs = list(zip(timer.t, timer.t[1:]))
            results[arm].append(statistics.fmean(b[0] - a_[0] for a_, b in pairs))
            walls[arm].append(statistics.fmean(b[1] - a_[1] for a_, b in pairs))
            if every:
                assert (out / "gradient_norms.groups.csv").is_file()
    load = os.getloadavg()
    base_ms = statistics.median(results["without callback"]) * 1e3
    print(
        f"\ngradient-norm callback overhead: {a.method} fine-tune of `{a.preset}`, {a.steps} steps x "
        f"{a.repeats} repeats, batch 4 x <=256 tokens, {a.threads} threads, "
        f"load average {load[0]:.1f}/{load[1]:.1f} on {os.cpu_count()} CPUs"
    )
    wall_ms = statistics.median(walls["without callback"]) * 1e3
    print(
        f"{'arm':<22} {'CPU ms/step, per repeat':<30} {'median':>8} {'ratio':>7} "
        f"{'wall ms/step (median)':>22} {'ratio':>7}"
    )
    for arm in arms:
        med = statistics.median(results[arm]) * 1e3
        wmed = statistics.median(walls[arm]) * 1e3
        per = ", ".join(f"{x * 1e3:.1f}" for x in results[arm])
        print(
            f"{arm:<22} {per:<30} {med:>8.1f} {med / base_ms:>7.3f} {wmed:>22.1f} {wmed / wall_ms:>7.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
