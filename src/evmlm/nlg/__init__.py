"""NLG benchmarks beside the decompilation task: E2E NLG, SAMSum, WikiSQL and MultiNLI.

Layer: a leaf of evmlm (it uses :mod:`evmlm.decompile.generation` for batched left-padded
generation and :func:`evmlm.train.load_for_inference` for models; nothing imports it but
callers). :mod:`evmlm.nlg.data` reads the release files (or hub names, from the local cache)
and builds the prompts; :mod:`evmlm.nlg.metrics` scores predictions (BLEU, ROUGE, METEOR,
exact match, accuracy). :func:`run_benchmark` ties them together for one model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evmlm.nlg.data import BENCHMARKS, NLGExample, load_benchmark

__all__ = ["BENCHMARKS", "NLGExample", "load_benchmark", "run_benchmark", "score"]


def score(name: str, predictions: list[str], examples: list[NLGExample]) -> dict[str, float | None]:
    """The benchmark's metrics of ``predictions`` (one per example, in order)."""
    from evmlm.nlg import metrics

    refs = [list(e.references) for e in examples]
    kind = BENCHMARKS[name].metric
    if kind == "generation":
        return metrics.generation_metrics(predictions, refs)
    if kind == "exact_match":
        return {"exact_match": metrics.exact_match(predictions, refs)}
    return {"accuracy": metrics.accuracy(predictions, refs)}


def run_benchmark(
    name: str,
    source: str | Path,
    model: Any,
    tokenizer: Any,
    *,
    split: str = "validation",
    limit: int | None = None,
    max_new_tokens: int = 64,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Generate greedily for every example (batched, left-padded) and score.

    Each output is cut at the tokenizer's EOS and kept up to its first line break (every
    benchmark's answer is one line). Returns ``{"benchmark", "n", "metrics", "predictions"}``.
    """
    from evmlm.decompile.generation import generate_completions

    examples = load_benchmark(name, source, split, limit)
    outs = generate_completions(
        model,
        tokenizer,
        [e.prompt for e in examples],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    eos = tokenizer.eos_token or ""
    preds = []
    for text, _ in outs:
        text = text.split(eos, 1)[0] if eos else text
        preds.append(next((ln.strip() for ln in text.splitlines() if ln.strip()), ""))
    return {
        "benchmark": name,
        "n": len(examples),
        "metrics": score(name, preds, examples),
        "predictions": preds,
    }
