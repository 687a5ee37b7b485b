"""Training throughput: the `evmlm pretrain` path (HF Trainer + evmlm callbacks) vs a plain PyTorch loop.

Both train the same `small` preset (~4M params; Llama, bf16 autocast on CPU) from the same
initial weights on the same packed batches (real Solidity + TAC from tests/fixtures/train, or a
run's corpus via --run), with the same optimizer (AdamW, fused as the Trainer's default
`adamw_torch_fused`), learning-rate schedule (warmup + cosine) and gradient clipping. Each path
runs --repeats times, interleaved, and the median tokens/s is reported; the ratio is against the
plain loop measured in the same run (goal: >= 0.9).

    .venv/bin/python benchmarks/train_throughput.py [--steps 40] [--repeats 2] [--threads 2]

The plain loop here is the only hand-written training loop in evmlm: it is the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "train"


def texts_from(run: Path | None) -> list[str]:
    if run is not None:
        from evmlm.corpus import iter_sources

        return [s.text for s in iter_sources(run / "corpus")]
    pairs = [json.loads(line) for line in (FIXTURES / "pairs.jsonl").read_text().splitlines()]
    return [p.read_text() for p in sorted((FIXTURES / "sources").glob("*.sol"))] + [
        r["tac"] for r in pairs
    ]


def plain_loop(cfg, tokenizer, data_dir: Path, seed: int) -> tuple[float, int]:
    """The baseline: forward/backward/clip/step/schedule, nothing else. Returns (seconds, tokens)."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler
    from transformers import get_scheduler

    from evmlm.models import build_model
    from evmlm.train.data import PackedBlocks

    ctx = cfg.context_length
    model = build_model(
        cfg.preset,
        len(tokenizer),
        seed=seed,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.train()
    ds = PackedBlocks(data_dir / "train.bin", ctx)
    dl = DataLoader(
        ds,
        batch_size=cfg.batch_size,
        sampler=RandomSampler(ds, generator=torch.Generator().manual_seed(seed)),
        drop_last=True,
    )
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.learning_rate,
        betas=(0.9, 0.95),
        fused=True,
    )
    sched = get_scheduler(
        "cosine_with_min_lr",
        opt,
        num_warmup_steps=cfg.warmup_steps,
        num_training_steps=cfg.max_steps,
        scheduler_specific_kwargs={"min_lr_rate": cfg.min_lr_ratio},
    )
    step, it = 0, iter(dl)
    t0 = time.perf_counter()
    while step < cfg.max_steps:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(dl)
            batch = next(it)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
    seconds = time.perf_counter() - t0
    return seconds, step * cfg.batch_size * ctx


def trainer_path(cfg, tokenizer, data_dir: Path, out: Path, seed: int) -> tuple[float, int]:
    """`evmlm pretrain`'s function (evmlm.train.pretrain.pretrain). Returns (train seconds, tokens)."""
    from evmlm.train.pretrain import pretrain

    r = pretrain(cfg, tokenizer=tokenizer, data_dir=data_dir, out_dir=out, seed=seed, resume=False)
    return r.seconds, r.steps * cfg.batch_size * cfg.context_length


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: 2, or 1 when the CPU is oversubscribed)",
    )
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument(
        "--run", type=Path, default=None, help="use runs/<name>/corpus instead of the test fixture"
    )
    a = ap.parse_args(argv)

    import logging

    import torch
    import transformers

    from evmlm.config import PretrainConfig
    from evmlm.train.data import write_token_file
    from evmlm.train.tokenizer import train_tokenizer

    logging.basicConfig(level=logging.WARNING)
    transformers.logging.set_verbosity_error()
    from evmlm.train.threads import effective_threads

    a.threads = a.threads or effective_threads(2)
    torch.set_num_threads(a.threads)
    texts = texts_from(a.run)
    tokenizer = train_tokenizer(texts, 8192)
    cfg = PretrainConfig(
        preset=a.preset,
        context_length=a.context,
        batch_size=a.batch_size,
        max_steps=a.steps,
        warmup_steps=min(10, a.steps // 4),
        eval_steps=a.steps + 1,
        save_steps=a.steps + 1,
        logging_steps=10,
        time_budget_s=None,
        bf16=not a.fp32,
    )
    results: dict[str, list[float]] = {
        "plain PyTorch loop (baseline)": [],
        "evmlm pretrain (HF Trainer)": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_token_file(texts[:-2], tokenizer, data / "train.bin")
        write_token_file(texts[-2:], tokenizer, data / "val.bin")
        for r in range(a.repeats):
            s, n = plain_loop(cfg, tokenizer, data, seed=r)
            results["plain PyTorch loop (baseline)"].append(n / s)
            s, n = trainer_path(cfg, tokenizer, data, Path(tmp) / f"trainer{r}", seed=r)
            results["evmlm pretrain (HF Trainer)"].append(n / s)
    base = statistics.median(results["plain PyTorch loop (baseline)"])
    n_params = sum(
        p.numel()
        for p in __import__("evmlm.models", fromlist=["build_model"])
        .build_model(a.preset, len(tokenizer))
        .parameters()
    )
    print(
        f"\npreset {a.preset} ({n_params / 1e6:.1f}M params), batch {a.batch_size} x {a.context} tokens, {a.steps} steps, "
        f"{'fp32' if a.fp32 else 'bf16 autocast'}, {a.threads} threads, torch {torch.__version__}, load avg {os.getloadavg()[0]:.1f}"
    )
    print(f"{'path':34} {'tok/s (median)':>15} {'runs':>24} {'ratio':>7}")
    for name, vals in results.items():
        med = statistics.median(vals)
        print(
            f"{name:34} {med:15,.0f} {', '.join(f'{v:,.0f}' for v in vals):>24} {med / base:7.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
