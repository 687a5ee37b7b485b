"""The multi-task ablation at equal parameters and wall-clock, same data (issue 14).

Arms (all from `configs/multitask/ablation.yaml`, differing only as listed; each trains for
`--budget` wall seconds with a constant learning rate after warmup, so that cutting at the
budget leaves no arm mid-schedule):

- `plain`: the detail loss only (a plain Llama decoder; the heads are untrained);
- `fixed`: the four losses with the fixed λ (0.4 / 0.3 / 0.2 / 0.1);
- `adaptive`: uncertainty weighting (Kendall et al. 2018) + 0.1 consistency;
- `shared`: `fixed` with twice the logical layers, consecutive pairs sharing one block (the
  same unique parameters as the others, twice the compute per token);
- `sparse`: `fixed` with sparse attention (window 64, top-k 4): the quality cost of sparse
  attention at the dataset's length.

Each arm is then evaluated teacher-forced on the whole test split (`evaluate_model_dir`:
detail loss, semantic-class accuracy, element micro-F1); `--generate N` also runs evmlm's
evaluation (`evmlm.evaluate.stage.evaluate`: BLEU, similarity, recompiles) of the `plain` and
`fixed` arms on N test functions. The tokenizer is trained here exactly as the tokenizer
stage does for a scratch model (corpus Solidity + train TAC, 8,192 tokens). The baseline of
every ratio is `plain`.

    nice -n 10 .venv/bin/python benchmarks/multitask_ablation.py --run runs/default \\
        --out runs/multitask-ablation [--budget 300] [--arms plain,fixed,...] [--generate 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]

ARMS: dict[str, dict] = {
    "fixed": {},
    "plain": {"variant": "plain"},
    "adaptive": {"weighting": "uncertainty"},
    "shared": {"share": 2, "num_layers_factor": 2},
    "sparse": {"attention": "sparse", "sparse_window": 64, "sparse_top_k": 4},
}


def tokenizer_dir(run: Path, out: Path) -> Path:
    """The scratch models' tokenizer: 8,192 BPE tokens trained as the tokenizer stage does for
    ``model.base: scratch`` (corpus Solidity + train TAC), into ``out/tokenizer`` (reused). Not the
    run's own tokenizer: the default run's is SmolLM2's 49,152 tokens, whose embeddings alone
    would be three times these models' blocks."""
    target = out / "tokenizer"
    if (target / "tokenizer.json").is_file():
        return target
    from evmlm.corpus import iter_sources
    from evmlm.train.data import read_pairs
    from evmlm.train.tokenizer import train_tokenizer

    t0 = time.perf_counter()

    def texts():
        for s in iter_sources(run / "corpus"):
            yield s.text
        for r in read_pairs(run / "dataset", "train"):
            yield r["tac"]

    tok = train_tokenizer(texts(), 8192, min_frequency=2)
    tok.save_pretrained(str(target))
    print(f"tokenizer: {len(tok)} tokens in {time.perf_counter() - t0:.0f} s", flush=True)
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "default")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "multitask-ablation")
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "multitask" / "ablation.yaml")
    ap.add_argument("--budget", type=float, default=300.0, help="training wall seconds per arm")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--generate", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import torch
    import yaml

    from evmlm.multitask.training import MultitaskRunConfig, evaluate_model_dir, train

    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    tok = tokenizer_dir(a.run, a.out)
    base = yaml.safe_load(a.config.read_text())
    results = {}
    for name in a.arms.split(","):
        over = dict(ARMS[name])
        factor = over.pop("num_layers_factor", 1)
        data = {
            **base,
            **over,
            "dataset_dir": str(a.run / "dataset"),
            "tokenizer_dir": str(tok),
            "out_dir": str(a.out / name),
            "time_budget_s": a.budget,
            "num_layers": base["num_layers"] * factor,
        }
        cfg = MultitaskRunConfig.from_dict(data)
        load0 = os.getloadavg()[0]
        summary = train(cfg, threads=a.threads)
        load1 = os.getloadavg()[0]
        print(f"[{name}] {summary['line']}", flush=True)
        t0 = time.perf_counter()
        test = evaluate_model_dir(summary["model_dir"], a.run / "dataset", split="test")
        test["eval_seconds"] = round(time.perf_counter() - t0, 1)
        test["train_seconds"] = summary["train_seconds"]
        test["steps"] = summary["steps"]
        test["train_line"] = summary["line"]
        test["load"] = [round(load0, 1), round(load1, 1)]
        if a.generate and name in ("plain", "fixed"):
            from evmlm.config import EvalConfig
            from evmlm.evaluate.stage import evaluate as run_evaluate

            try:
                rep = run_evaluate(
                    summary["model_dir"],
                    a.run / "dataset",
                    a.out / name / "generation",
                    config=EvalConfig(
                        split="test",
                        max_functions=a.generate,
                        baselines=(),
                        verify=False,
                        n_examples=3,
                        max_new_tokens=256,
                    ),
                    compile_dir=a.run / "compile",
                    threads=a.threads,
                )
                test["generation"] = {"line": rep["line"], "overall": rep["overall"]}
                print(f"[{name}] generation: {rep['line']}", flush=True)
            except Exception as e:  # noqa: BLE001 - recorded; the other arms go on
                test["generation"] = {"error": f"{type(e).__name__}: {e}"}
                print(f"[{name}] generation failed: {type(e).__name__}: {e}", flush=True)
        results[name] = test
        (a.out / "ablation.json").write_text(json.dumps(results, indent=2))
        print(
            f"[{name}] test: detail {test['detail_loss']:.3f}, semantic acc "
            f"{test['semantic_accuracy']:.3f}, element micro-F1 {test['element_micro_f1']:.3f}",
            flush=True,
        )
    plain = results.get("plain")
    print(f"\nbudget {a.budget:.0f} s per arm, {a.threads} threads; test split")
    print(
        "| arm | params | steps | detail loss (nats) | ratio vs plain | semantic acc | "
        "semantic acc (code) | element micro-F1 | load |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in results.items():
        ratio = f"{r['detail_loss'] / plain['detail_loss']:.3f}" if plain else "-"
        print(
            f"| {name} | {r['parameters']:,} | {r['steps']} | {r['detail_loss']:.3f} | {ratio} | "
            f"{r['semantic_accuracy']:.3f} | {r['semantic_accuracy_code']:.3f} | "
            f"{r['element_micro_f1']:.3f} | {r['load'][0]}-{r['load'][1]} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
