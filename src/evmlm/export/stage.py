"""The ``export`` stage of ``evmlm run`` (off unless ``export.enabled``) and the records the
round-trip checks read."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPLITS = ("test", "validation", "train")


def check_records(dataset_dir: str | Path, split: str, n: int) -> list[dict[str, Any]]:
    """The first ``n`` records of ``split``, topped up from the other splits (test, validation,
    train order) when it has fewer. Raises DatasetNotFoundError for a folder with no dataset."""
    from evmlm.dataset import load_split

    out: list[dict[str, Any]] = []
    for s in (split, *[x for x in SPLITS if x != split]):
        if len(out) >= n:
            break
        ds = load_split(dataset_dir, s)
        out += [dict(ds[i]) for i in range(min(len(ds), n - len(out)))]
    return out


def run_stage(ctx: Any) -> dict[str, Any]:
    """GGUF files of the run's fine-tuned model in ``runs/<name>/export/`` with the round-trip
    checks on the run's dataset (:func:`evmlm.export.gguf.export_gguf`)."""
    from evmlm.evaluate.stage import model_dir_of
    from evmlm.export.checks import CheckConfig
    from evmlm.export.gguf import export_gguf
    from evmlm.train.threads import effective_threads

    cfg = ctx.config.export
    if not cfg.enabled:
        return {"line": "off (set export.enabled: true to write GGUF files)"}
    checks = CheckConfig(
        n_texts=cfg.n_texts,
        n_greedy=cfg.n_greedy,
        max_new_tokens=cfg.max_new_tokens,
        n_logit_texts=cfg.n_logit_texts,
        logit_tokens=cfg.logit_tokens,
    )
    report = export_gguf(
        model_dir_of(ctx.dir_of("finetune")),
        ctx.stage_dir,
        types=cfg.quants,
        records=check_records(ctx.dir_of("dataset"), cfg.split, cfg.n_texts),
        checks=checks,
        threads=effective_threads(ctx.threads),
    )
    return {"line": report["line"], "files": {t: e["file"] for t, e in report["files"].items()}}
