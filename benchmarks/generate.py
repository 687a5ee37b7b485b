"""Generation speed: transformers ``generate`` (the baseline) vs llama.cpp on GGUF files.

Usage: ``.venv/bin/python benchmarks/generate.py --model runs/<name>/finetune/model
--gguf runs/<name>/export [--prompts 10] [--max-new-tokens 128] [--threads 2]``

Takes the first ``--prompts`` records of the model's run dataset (test split), builds their
prompts in evmlm's format fitted to the prompt budget decompilation uses
(:func:`evmlm.decompile.generation.generation_budget`: a fine-tuned model's ``max_length``
less the new tokens; at most ``--prompt-tokens``; :func:`evmlm.train.prompt.fit_prompt`, as
decompilation does), and generates greedily from each, one prompt at a time, with the HF
model (float32, ``generate``) and then with each ``model-<type>.gguf`` in ``--gguf`` through
llama.cpp (:class:`evmlm.train.llamacpp.LlamaCppModel`), all in this process, one after the
other, on the same prompts and thread count. Generation stops at EOS, so the systems may
generate different numbers of tokens: the table gives new tokens per second (all new tokens /
all generation seconds, prompt processing included) and the ratio against HF. Each system
first generates 8 tokens from one prompt (warm-up, not timed). The machine's load average is
printed with the table (the numbers are wall time).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch


def _run(model, prompts, max_new_tokens: int, eos: int, pad: int) -> tuple[int, float]:
    new = 0
    t0 = time.perf_counter()
    for ids in prompts:
        inp = torch.tensor([ids])
        with torch.no_grad():
            out = model.generate(
                input_ids=inp,
                attention_mask=torch.ones_like(inp),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=pad,
            )
        gen = out[0, len(ids) :].tolist()
        new += gen.index(eos) + 1 if eos in gen else len(gen)
    return new, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="HF model folder (the baseline)")
    ap.add_argument("--gguf", type=Path, required=True, help="folder of model-<type>.gguf")
    ap.add_argument("--dataset", type=Path, help="dataset folder (default: the model's run)")
    ap.add_argument("--prompts", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=1024, help="prompt budget (at most)")
    args = ap.parse_args()

    from evmlm.decompile.generation import generation_budget
    from evmlm.export.gguf import default_dataset
    from evmlm.export.stage import check_records
    from evmlm.train import load_for_inference
    from evmlm.train.llamacpp import LlamaCppModel
    from evmlm.train.prompt import fit_prompt

    torch.set_num_threads(args.threads)
    hf, tok = load_for_inference(args.model)
    # the prompt budget decompilation uses (a fine-tuned model's max_length), at most --prompt-tokens
    budget = min(generation_budget(hf, args.max_new_tokens)[0], args.prompt_tokens)
    ds = args.dataset or default_dataset(args.model)
    records = check_records(ds, "test", args.prompts)
    prompts = [
        tok(fit_prompt(r["tac"], r.get("signature"), r.get("contract_context"), tok, budget))[
            "input_ids"
        ]
        for r in records
    ]
    eos, pad = tok.eos_token_id, tok.pad_token_id
    load0 = os.getloadavg()[0]
    _run(hf, prompts[:1], 8, eos, pad)  # warm-up (first-call allocations), as for llama.cpp
    rows = [("HF generate (float32)", *_run(hf, prompts, args.max_new_tokens, eos, pad))]
    for f in sorted(args.gguf.glob("*.gguf"), key=lambda p: p.stat().st_size, reverse=True):
        m = LlamaCppModel(f, n_threads=args.threads, n_ctx=budget + args.max_new_tokens)
        _run(m, prompts[:1], 8, eos, pad)  # warm-up (first-call allocations)
        rows.append((f"llama.cpp {f.stem}", *_run(m, prompts, args.max_new_tokens, eos, pad)))
    base = rows[0][1] / rows[0][2]
    n_prompt = sum(len(p) for p in prompts)
    print(
        f"{len(prompts)} prompts ({n_prompt} prompt tokens), up to {args.max_new_tokens} new"
        f" tokens, {args.threads} threads; 1-min load average {load0:.1f} at the start,"
        f" {os.getloadavg()[0]:.1f} at the end"
    )
    print("| system | new tokens | seconds | tokens/s | ratio vs HF |")
    print("|---|---|---|---|---|")
    for name, n, s in rows:
        print(f"| {name} | {n} | {s:.2f} | {n / s:.1f} | {n / s / base:.2f}x |")


if __name__ == "__main__":
    main()
