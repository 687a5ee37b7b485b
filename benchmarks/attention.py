"""Sparse (windowed + top-k) vs dense attention: time and peak memory per forward+backward.

One attention call as a Llama layer makes it (`evmlm.multitask.attention`): batch 1, `--heads`
heads of `--head-dim` (default 6 x 32, the `small` preset), causal, float32 on the CPU, at
512, 2,048 and 8,192 tokens. Arms:

- `dense-sdpa` (the baseline, the model's default): `torch.nn.functional.scaled_dot_product_attention(is_causal=True)`;
- `dense-eager`: scores materialised (seq x seq), masked, softmax (transformers' eager path);
- `sparse w=W k=K`: the blocked path of `sparse_attention_forward` (window W tokens, K far
  blocks), for each (W, K) in `--sparse`.

Each (arm, length) runs in a fresh subprocess (so peak memory is that process's alone):
`--repeats` timed forward+backward passes after one warm-up; the median wall time is reported,
and the peak resident memory the pass added (`ru_maxrss` after the passes minus before the
first, MiB). Ratios are against `dense-sdpa` at the same length, measured in the same run. The
quality cost (sparse vs dense validation loss of the same model) is measured by
`evmlm multitask train --attention=sparse` (docs/multitask.md), not here.

    .venv/bin/python benchmarks/attention.py [--lengths 512,2048,8192] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one(arm: str, n: int, heads: int, dim: int, repeats: int, threads: int) -> dict:
    """Run in the subprocess: time and peak memory of ``arm`` at ``n`` tokens."""
    import torch

    from evmlm.multitask.attention import _blocked_attention

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, heads, n, dim, requires_grad=True) for _ in range(3))
    scale = dim**-0.5

    def fwd() -> torch.Tensor:
        if arm == "dense-sdpa":
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        if arm == "dense-eager":
            s = (q @ k.transpose(-1, -2)) * scale
            causal = torch.ones(n, n, dtype=torch.bool).tril()
            s = s.masked_fill(~causal, float("-inf"))
            return torch.softmax(s, dim=-1) @ v
        w, kk = (int(x.split("=")[1]) for x in arm.split()[1:])
        return _blocked_attention(q, k, v, w, kk, scale)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        out = fwd()
        out.square().mean().backward()
        if i:
            times.append(time.perf_counter() - t0)
        q.grad = k.grad = v.grad = None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"arm": arm, "n": n, "s": statistics.median(times), "mib": (peak - before) / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="512,2048,8192")
    ap.add_argument("--sparse", default="64:4,128:4", help="W:K pairs, comma-separated")
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        arm, n = a.one.rsplit("@", 1)
        print(json.dumps(one(arm, int(n), a.heads, a.head_dim, a.repeats, a.threads)))
        return 0
    arms = ["dense-sdpa", "dense-eager"] + [
        f"sparse w={w} k={k}" for w, k in (p.split(":") for p in a.sparse.split(","))
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    rows = []
    for n in (int(x) for x in a.lengths.split(",")):
        for arm in arms:
            cmd = [sys.executable, __file__, "--one", f"{arm}@{n}", "--repeats", str(a.repeats)]
            cmd += ["--heads", str(a.heads), "--head-dim", str(a.head_dim)]
            cmd += ["--threads", str(a.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode != 0:
                rows.append({"arm": arm, "n": n, "error": out.stderr.strip().splitlines()[-1]})
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {arm} @ {n}: {rows[-1]['s']:.3f} s, {rows[-1]['mib']:.0f} MiB", flush=True)
    base = {r["n"]: r for r in rows if r["arm"] == "dense-sdpa" and "s" in r}
    print(f"\nload {os.getloadavg()[0]:.1f}, {a.threads} thread(s), {a.heads}x{a.head_dim} heads")
    print("| tokens | arm | fwd+bwd s | ratio vs dense-sdpa | peak MiB | ratio vs dense-sdpa |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['n']:,} | {r['arm']} | failed: {r['error'][:60]} | | | |")
            continue
        b = base.get(r["n"])
        rt = f"{r['s'] / b['s']:.2f}" if b else "-"
        rm = f"{r['mib'] / b['mib']:.2f}" if b and b["mib"] > 0 else "-"
        print(f"| {r['n']:,} | {r['arm']} | {r['s']:.3f} | {rt} | {r['mib']:.0f} | {rm} |")
    wins = [r for r in rows if "s" in r and r["arm"].startswith("sparse")]
    wins = [r for r in wins if r["n"] in base and r["s"] < base[r["n"]]["s"]]
    print(
        "sparse faster than dense-sdpa at: "
        + (", ".join(f"{r['n']:,} ({r['arm']})" for r in wins) or "no length measured")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
