"""The ``dataset`` stage of ``evmlm run``: compile + lift outputs → pair dataset.

Writes under ``runs/<name>/dataset/``: ``pairs.jsonl``, ``hf/``, ``parquet/<split>.parquet``,
``signatures.tsv``, ``signature_collisions.json``, ``stats.json``, ``README.md`` (the dataset
card) with ``hist_*.png``, and ``_work/`` (resumable per-compile-result shards).
"""

from __future__ import annotations

import time
from typing import Any

from evmlm.pipeline import StageContext


def run_stage(ctx: StageContext) -> dict[str, Any]:
    """Build the dataset; return a summary with a one-line ``line``."""
    from evmlm.dataset.build import build_dataset, summary_line

    t0 = time.perf_counter()
    stats = build_dataset(
        compile_dir=ctx.dir_of("compile"),
        lift_dir=ctx.dir_of("lift"),
        out_dir=ctx.stage_dir,
        config=ctx.config.dataset,
        corpus_dir=ctx.dir_of("corpus"),
        workers=ctx.threads,
        lift_config=ctx.config.lift,
    )
    b = stats["build"]
    return {
        "line": summary_line(stats) + f" in {time.perf_counter() - t0:.0f} s",
        "total_pairs": stats["total_pairs"],
        "splits": stats["splits"],
        "distinct_functions": stats["distinct_functions"],
        "pairs_before_near_dup": b["after_exact_dedup"],
        "pairs_wrappers": b["pairs_wrappers"],
        "signature_share": stats["signature_coverage"]["share"],
    }


def input_digest(config: Any) -> str:
    """The versions of what the stage computes beyond its config (pairing, wrappers, the
    structural draft of every pair), so that a changed algorithm re-runs the stage."""
    from evmlm.dataset.build import PAIRING_VERSION
    from evmlm.dataset.wrappers import WRAPPER_VERSION
    from evmlm.structural import DRAFT_VERSION

    return f"pairing {PAIRING_VERSION}, wrappers {WRAPPER_VERSION}, draft {DRAFT_VERSION}"
