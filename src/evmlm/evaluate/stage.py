"""The ``evaluate`` stage and ``evmlm evaluate``: model and baselines on one split, one report.

:func:`evaluate` loads the split's pair records (and the train split for retrieval), samples
at most ``EvalConfig.max_functions`` of them, gets predictions from the model and from every
configured baseline, scores all of them with the same metrics
(:func:`evmlm.evaluate.runner.score_system`) and writes ``report.json``, ``report.md`` and the
plots into the output folder (:mod:`evmlm.evaluate.report`).
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from evmlm.config import EvalConfig
from evmlm.evaluate.errors import EvaluationError
from evmlm.evaluate.runner import (
    MODEL,
    MODEL_DRAFT,
    ORACLE,
    SAMPLE_TEMPERATURE,
    STRUCTURAL,
    VERIFIED,
    Checker,
    Contracts,
    FunctionScore,
    forced_header,
    predict_model,
    predict_oracle,
    predict_panoramix,
    predict_retrieval,
    predict_structural,
    predict_stub,
    prompt_drafts,
    score_system,
    select_functions,
    select_verified,
)

log = logging.getLogger(__name__)


def _bar(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="fn", disable=None, leave=False)


def load_records(dataset_dir: str | Path, split: str) -> list[dict[str, Any]]:
    """Pair records of one split of the dataset stage folder. Raises EvaluationError when missing."""
    from evmlm.errors import EvmlmError

    try:
        from evmlm.dataset import load_split

        return [dict(r) for r in load_split(dataset_dir, split)]
    except EvmlmError as e:
        raise EvaluationError(
            f"{dataset_dir}: cannot load split {split!r} ({e}); run `evmlm dataset` first"
        ) from e


def compile_loader(compile_dir: str | Path | None) -> Callable[[str], Any] | None:
    """``compile_key → CompileResult`` from the compile stage folder (cached), or None without one."""
    if compile_dir is None or not Path(compile_dir).is_dir():
        return None
    import gzip
    import json

    from evmlm.errors import EvmlmError
    from evmlm.solc import CompileResult
    from evmlm.solc.compiler import cache_path
    from evmlm.solc.stage import load_result

    @functools.lru_cache(maxsize=64)
    def load(key: str) -> Any:
        try:
            return load_result(compile_dir, key)
        except EvmlmError:
            # jobs compiled by later stages (the dataset's concrete wrappers) are only in the compile cache
            p = cache_path(key)
            if not p.is_file():
                raise
            with gzip.open(p, "rt", encoding="utf-8") as f:
                rec = json.load(f)
            if not rec.get("ok", True) or "result" not in rec:
                raise
            return CompileResult.from_json(rec["result"])

    return load


def evaluate(
    model_dir: str | Path | None,
    dataset_dir: str | Path | None,
    out_dir: str | Path,
    *,
    config: EvalConfig | None = None,
    compile_dir: str | Path | None = None,
    model: Any = None,
    tokenizer: Any = None,
    records: Sequence[Mapping[str, Any]] | None = None,
    train_records: Sequence[Mapping[str, Any]] | None = None,
    load_compile: Callable[[str], Any] | None = None,
    run_name: str = "",
    threads: int | None = None,
) -> dict[str, Any]:
    """Evaluate a model and the baselines on one split; write the report into ``out_dir``.

    ``model_dir``: a merged model / adapter / HF model folder (or pass ``model`` and
    ``tokenizer``); ``dataset_dir``: the dataset stage folder (or pass ``records`` and
    ``train_records``); ``compile_dir``: the compile stage folder, for Panoramix's bytecode and
    the recompile / behaviour checks (or pass ``load_compile``: compile_key → CompileResult).
    ``threads``: torch threads (``run.threads``; 1 when the CPU is already oversubscribed, see
    :func:`evmlm.train.threads.effective_threads`). Without a model (``model_dir`` and
    ``model`` None) only ``oracle``, ``structural`` and the baselines are evaluated. Returns a
    summary dict with a one-line ``line``. Raises EvaluationError when there is no data, and
    the model loader's error for a bad model folder.
    """
    cfg = config or EvalConfig()
    t_start = time.perf_counter()
    if threads is not None:
        import torch

        from evmlm.train.threads import effective_threads

        torch.set_num_threads(effective_threads(threads))
    if records is None:
        if dataset_dir is None:
            raise EvaluationError("no dataset: pass the dataset stage folder (runs/<name>/dataset)")
        records = load_records(dataset_dir, cfg.split)
    recs = select_functions(records, cfg.max_functions, cfg.seed)
    if not recs:
        raise EvaluationError(
            f"split {cfg.split!r} has no functions to evaluate; build a larger dataset or pick another split"
        )
    if load_compile is None:
        load_compile = compile_loader(compile_dir)
    if (model is None or tokenizer is None) and model_dir is not None:
        from evmlm.multitask import register_auto_classes
        from evmlm.train import load_for_inference

        register_auto_classes()  # multi-task models load like any other

        model, tokenizer = load_for_inference(model_dir)
    has_model = model is not None and tokenizer is not None

    predictions: dict[str, dict[str, tuple[str, float]]] = {}
    failures: dict[str, dict[str, str]] = {}
    timings: dict[str, float] = {}
    kept: dict[str, dict[str, str]] = {}
    contracts = Contracts(load_compile)
    predictions[ORACLE] = predict_oracle(recs)
    t0 = time.perf_counter()
    with _bar(len(recs), "structural") as bar:
        predictions[STRUCTURAL], failures[STRUCTURAL] = predict_structural(
            recs, contracts, progress=bar.update
        )
    timings[STRUCTURAL] = time.perf_counter() - t0
    drafts = {rid: text for rid, (text, _) in predictions[STRUCTURAL].items() if text.strip()}
    headers = {str(r["id"]): forced_header(r, contracts, drafts.get(str(r["id"]))) for r in recs}
    drafts = prompt_drafts(recs, drafts)  # what the model is prompted with, as in fine-tuning
    samples: list[dict[str, tuple[str, float]]] = []
    if has_model:
        for name, with_drafts in ((MODEL, None), (MODEL_DRAFT, drafts)):
            t0 = time.perf_counter()
            with _bar(len(recs), f"generate ({name})") as bar:
                predictions[name] = predict_model(
                    recs,
                    model,
                    tokenizer,
                    cfg,
                    progress=bar.update,
                    drafts=with_drafts,
                    headers=headers,
                )
            timings[name] = time.perf_counter() - t0
        if cfg.verify:
            t0 = time.perf_counter()
            for k in range(cfg.candidates - 2):
                with _bar(len(recs), f"sample {k + 1}") as bar:
                    samples.append(
                        predict_model(
                            recs,
                            model,
                            tokenizer,
                            cfg,
                            progress=bar.update,
                            drafts=drafts,
                            headers=headers,
                            temperature=SAMPLE_TEMPERATURE,
                            seed=cfg.seed + 1 + k,
                        )
                    )
            timings["samples"] = time.perf_counter() - t0
    for name in cfg.baselines:
        t0 = time.perf_counter()
        if name == "panoramix":
            with _bar(len(recs), "panoramix") as bar:
                predictions[name], failures[name] = predict_panoramix(
                    recs,
                    load_compile,
                    cfg.panoramix_timeout_s,
                    progress=bar.update,
                    budget_s=cfg.panoramix_budget_s,
                )
        elif name == "retrieval":
            if train_records is None:
                train_records = (
                    load_records(dataset_dir, "train") if dataset_dir is not None else []
                )
            predictions[name] = predict_retrieval(recs, train_records)
        elif name == "signature_stub":
            predictions[name] = predict_stub(recs)
        timings[name] = time.perf_counter() - t0

    checker = Checker(load_compile, cfg)
    if cfg.verify and cfg.behaviour and has_model:
        t0 = time.perf_counter()
        cands: dict[str, list[tuple[str, str, float]]] = {}
        for r in recs:
            rid = str(r["id"])
            cands[rid] = [("draft", *predictions[STRUCTURAL].get(rid, ("", 0.0)))]
            if MODEL_DRAFT in predictions:
                cands[rid].append(("greedy", *predictions[MODEL_DRAFT][rid]))
            cands[rid] += [(f"sample{k + 1}", *smp[rid]) for k, smp in enumerate(samples)]
        predictions[VERIFIED], kept[VERIFIED] = select_verified(recs, cands, checker)
        timings["select_verified"] = time.perf_counter() - t0

    scores: dict[str, list[FunctionScore]] = {}
    for name, preds in predictions.items():
        t0 = time.perf_counter()
        with _bar(len(recs), f"score {name}") as bar:
            scores[name] = score_system(
                name,
                recs,
                preds,
                failures=failures.get(name),
                config=cfg,
                progress=bar.update,
                checker=checker,
                kept=kept.get(name),
            )
        timings[f"score_{name}"] = time.perf_counter() - t0

    from evmlm.evaluate.report import build_report, write_report

    meta = {
        "run": run_name,
        "model": str(model_dir)
        if model_dir is not None
        else getattr(getattr(model, "config", None), "name_or_path", "in-memory model")
        if has_model
        else None,
        "split": cfg.split,
        "max_new_tokens": cfg.max_new_tokens,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "seconds": round(time.perf_counter() - t_start, 2),
    }
    report = build_report(recs, scores, meta=meta)
    files = write_report(Path(out_dir), report, recs, scores, cfg.n_examples)
    ov = report["overall"]
    parts = []
    for name in [n for n in (MODEL, MODEL_DRAFT, VERIFIED, STRUCTURAL, ORACLE) if n in ov] + list(
        cfg.baselines
    ):
        if ov.get(name, {}).get("n"):
            parts.append(
                f"{name} sim {ov[name]['similarity_mean']:.2f} edit {ov[name]['edit_distance_mean']:.2f} same {ov[name]['behaves_same']:.0%}"
            )
    line = f"{len(recs)} {cfg.split} functions: " + "; ".join(parts)
    if report["findings"] and "NOT" in report["findings"][0]:
        line += " (model does not beat retrieval)"
    return {
        "line": line,
        "n_functions": len(recs),
        "files": files,
        "overall": ov,
        "findings": report["findings"],
        "seconds": meta["seconds"],
    }


def model_dir_of(finetune_dir: Path) -> Path:
    """The model folder the finetune stage wrote: ``model/`` (merged), else ``adapter/``."""
    for sub in ("model", "adapter"):
        if (finetune_dir / sub).is_dir():
            return finetune_dir / sub
    raise EvaluationError(
        f"{finetune_dir}: no model/ or adapter/; run `evmlm run --until finetune` first"
    )


def run_stage(ctx: Any) -> dict[str, Any]:
    """The ``evaluate`` stage: the run's fine-tuned model and the baselines on ``evaluate.split``."""
    summary = evaluate(
        model_dir_of(ctx.dir_of("finetune")),
        ctx.dir_of("dataset"),
        ctx.stage_dir,
        config=ctx.config.evaluate,
        compile_dir=ctx.dir_of("compile"),
        run_name=ctx.run_dir.name,
        threads=ctx.threads,
    )
    summary.pop("files", None)
    return summary
