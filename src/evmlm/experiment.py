"""``evmlm experiment``: several LoRA fine-tunes that differ only in what trains, compared.

Every variant fine-tunes the same base model on the same train/validation pairs with the same
seed and the same optimizer-step budget (``ExperimentConfig.max_steps``; the time budget and
early stopping are switched off, epochs are not limiting); variants differ in
``finetune.*`` overrides only (LoRA targets, rank, phase schedule, ...). Each records
pre-clip gradient norms (:mod:`evmlm.train.grad_norms`) and, with ``eval_functions > 0``, is
scored on that many test-split functions by :func:`evmlm.evaluate.stage.evaluate` (semantic
similarity, recompiles, behaves the same of the greedy output, prompted without and with the
structural draft; no baselines, no verified selection).

Layout under ``out_dir``: ``<variant>/`` (a fine-tune output folder, see
:mod:`evmlm.train.finetune`, plus ``evaluate/``), ``results.json``, ``report.md`` (the table,
the winner and its margin), ``eval_loss.png`` (eval-loss curves overlaid),
``final_metrics.png`` and ``gradient_norms.png`` (group norms over steps, one panel per
variant). A variant whose ``<variant>/result.json`` records the same settings is not rerun.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from evmlm import atomic
from evmlm.config import (
    ConfigError,
    ExperimentConfig,
    ExperimentVariant,
    FinetuneConfig,
    RunConfig,
    load_config,
    to_dict,
)
from evmlm.train import phases

log = logging.getLogger(__name__)

_MODULES = (
    ExperimentVariant("attention", {"lora_targets": "attention"}),
    ExperimentVariant("mlp", {"lora_targets": "mlp"}),
    ExperimentVariant("both", {"lora_targets": "all"}),
)
_PHASES = tuple(
    ExperimentVariant(name, {"lora_targets": "all", "lora_phases": name}) for name in phases.PRESETS
)

#: Built-in experiments (``evmlm experiment --preset NAME``).
PRESETS: dict[str, ExperimentConfig] = {
    "modules": ExperimentConfig(name="modules", variants=_MODULES),
    "phases": ExperimentConfig(name="phases", variants=_PHASES),
    # attention-only, mlp-only, both, and the three module-phase strategies
    "strategies": ExperimentConfig(
        name="strategies", variants=_MODULES + tuple(v for v in _PHASES if "early" not in v.name)
    ),
    "all": ExperimentConfig(name="all", variants=_MODULES + _PHASES),
}


def expand(exp: ExperimentConfig) -> list[ExperimentVariant]:
    """The experiment's variants: the listed ones, then one per combination of ``grid`` values
    (named ``field=value,field=value``)."""
    out = list(exp.variants)
    keys = list(exp.grid)
    for combo in itertools.product(*(exp.grid[k] for k in keys)) if keys else ():
        name = ",".join(f"{k}={v}" for k, v in zip(keys, combo))
        out.append(ExperimentVariant(name, dict(zip(keys, combo))))
    return out


def variant_config(
    base: FinetuneConfig, exp: ExperimentConfig, v: ExperimentVariant
) -> FinetuneConfig:
    """``base`` with the variant's overrides and the experiment's equal step budget (validated
    like any config; raises ConfigError naming the variant's bad field)."""
    flags = {f"finetune.{k}": val for k, val in to_dict(base).items()}
    flags.update({f"finetune.{k}": val for k, val in v.finetune.items()})
    flags.update(
        {
            "finetune.max_steps": exp.max_steps,
            "finetune.epochs": 1e6,  # the step budget decides
            "finetune.time_budget_s": None,
            "finetune.early_stopping_patience": None,
            "finetune.grad_norm_steps": exp.grad_norm_steps,
        }
    )
    try:
        return load_config(None, flags).finetune
    except ConfigError as e:
        raise ConfigError(f"experiment variant {v.name}: {e}") from None


def experiment_base(cfg: RunConfig) -> tuple[str, str | Path]:
    """``(last stage to run, base model)`` for an experiment on ``cfg``'s run: the base the
    finetune stage would start from (:func:`evmlm.train.stage.run_finetune_stage`):
    ``finetune.base_model``, else the run's ``cpt/model`` (``cpt.enabled``), else the
    converted pretrained ``model.base`` (e.g. ``smollm2-135m``; only the data stages need to
    exist), else the run's ``pretrain/model`` (``model.base: scratch``). Raises
    BaseModelError when a pretrained ``model.base`` has no source files."""
    from evmlm.train.stage import is_pretrained, pretrained_base_dir

    if cfg.finetune.base_model:
        return "dataset", cfg.finetune.base_model
    if cfg.cpt.enabled:
        return "cpt", cfg.run_dir / "cpt" / "model"
    if is_pretrained(cfg.model.base):
        return "dataset", pretrained_base_dir(cfg.model.base)
    return "pretrain", cfg.run_dir / "pretrain" / "model"


def run_experiment(
    run_cfg: RunConfig,
    exp: ExperimentConfig,
    *,
    base_model: str | Path,
    dataset_dir: Path,
    out_dir: Path,
    tokenizer_dir: Path | None = None,
    compile_dir: Path | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Run every variant (skipping finished ones), then write the comparison report.

    Returns ``{"line", "variants": [per-variant metrics], "files"}``. Raises ConfigError for a
    bad variant, TrainingDataError for an empty dataset split.
    """
    from evmlm.train.data import TrainingDataError, read_pairs
    from evmlm.train.finetune import finetune

    train, val = read_pairs(dataset_dir, "train"), read_pairs(dataset_dir, "validation")
    if not train or not val:
        raise TrainingDataError(
            f"{dataset_dir}: the train or validation split is empty; build a larger dataset"
        )
    if exp.train_pairs and len(train) > exp.train_pairs:
        import random

        keep = sorted(random.Random(run_cfg.run.seed).sample(range(len(train)), exp.train_pairs))
        train = [train[i] for i in keep]
    variants = expand(exp)
    cfgs = {
        v.name: variant_config(run_cfg.finetune, exp, v) for v in variants
    }  # validate all first
    rows: list[dict[str, Any]] = []
    starts: dict[tuple[Any, ...], list[Any]] = {}  # _start_key -> [0, step-0 eval loss]
    for v in variants:
        cfg = cfgs[v.name]
        vdir = out_dir / v.name
        key = hashlib.sha256(
            json.dumps(
                {
                    "finetune": to_dict(cfg),
                    "base": str(base_model),
                    "seed": run_cfg.run.seed,
                    "dataset": str(dataset_dir),
                    "eval_functions": exp.eval_functions,
                    "train_pairs": exp.train_pairs,
                    "evaluate": to_dict(run_cfg.evaluate) if exp.eval_functions else None,
                },
                sort_keys=True,
            ).encode()
        ).hexdigest()
        done = vdir / "result.json"
        if done.is_file() and json.loads(done.read_text()).get("key") == key:
            log.info("experiment %s: %s done already", exp.name, v.name)
            rows.append(json.loads(done.read_text())["metrics"])
            _note_start(starts, cfg, rows[-1])
            continue
        # A variant's step-0 model is the base (LoRA B starts at zero), so variants that load
        # and evaluate it alike share their step-0 eval loss: evaluate it once
        start = starts.get(_start_key(cfg))
        log.info("experiment %s: variant %s (%s)", exp.name, v.name, v.finetune)
        res = finetune(
            cfg,
            base_model=base_model,
            train_records=train,
            eval_records=val,
            out_dir=vdir,
            tokenizer_dir=tokenizer_dir,
            seed=run_cfg.run.seed,
            threads=threads,
            resume=True,
            eval_on_start=start is None,
        )
        eval_losses = [tuple(x) for x in res.eval_losses]
        if start is not None and not any(st == 0 for st, _ in eval_losses):
            eval_losses.insert(0, tuple(start))
        m: dict[str, Any] = {
            "variant": v.name,
            "overrides": v.finetune,
            "steps": res.steps,
            "eval_losses": eval_losses,
            "eval_loss": res.eval_loss,
            "best_eval_loss": min(x for _, x in eval_losses) if eval_losses else None,
            "trainable_params": res.trainable_params,
            "seconds": round(res.seconds, 1),
            "tokens_per_second": round(res.tokens_per_second, 1),
        }
        gn = vdir / "gradient_norms.summary.json"
        if gn.is_file():
            groups = json.loads(gn.read_text())["groups"]
            m["grad_norm_mean"] = {g: s["mean"] for g, s in groups.items()}
        if exp.eval_functions:
            from evmlm.evaluate.stage import evaluate

            # no baselines and no verified selection (a property of the draft checker, not of
            # the variant): the model's greedy output, with and without the structural draft
            ev_cfg = replace(
                run_cfg.evaluate,
                max_functions=exp.eval_functions,
                baselines=(),
                n_examples=0,
                verify=False,
            )
            summ = evaluate(
                res.model_dir,
                dataset_dir,
                vdir / "evaluate",
                config=ev_cfg,
                compile_dir=compile_dir,
                run_name=run_cfg.run.name,
                threads=threads,
            )
            m["n_functions"] = summ["n_functions"]
            # "model": prompted without the draft; "model_draft" (suffix _draft): with it, as
            # fine-tuning, `evmlm decompile` and the default run's evaluation prompt
            for system, suffix in (("model", ""), ("model_draft", "_draft")):
                ov = summ["overall"].get(system)
                if ov:
                    m.update(
                        {
                            f"similarity{suffix}": ov["similarity_mean"],
                            f"recompiles{suffix}": ov["recompiles"],
                            f"recompile_checked{suffix}": ov["recompile_checked"],
                            f"behaves_same{suffix}": ov["behaves_same"],
                            f"behaviour_checked{suffix}": ov["behaviour_checked"],
                        }
                    )
        m = json.loads(json.dumps(m))  # the same plain data whether fresh or read back
        atomic.write_json(done, {"key": key, "metrics": m})
        rows.append(m)
        _note_start(starts, cfg, m)
    files = write_report(exp, rows, out_dir)
    best = min(rows, key=lambda r: r["eval_loss"] if r["eval_loss"] is not None else math.inf)
    line = (
        f"{len(rows)} variants, {exp.max_steps} steps each; "
        f"lowest eval loss: {best['variant']} ({best['eval_loss']:.4f})"
    )
    return {"line": line, "variants": rows, "files": files}


def _start_key(cfg: FinetuneConfig) -> tuple[Any, ...]:
    """What decides a variant's step-0 eval loss besides the base and the data."""
    return (cfg.method, cfg.max_length, cfg.max_eval_examples, cfg.bf16)


def _note_start(starts: dict[tuple[Any, ...], list[Any]], cfg: FinetuneConfig, row: Any) -> None:
    first = row["eval_losses"][:1]
    if first and first[0][0] == 0:
        starts.setdefault(_start_key(cfg), list(first[0]))


def _fmt(x: Any, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def write_report(exp: ExperimentConfig, rows: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """``results.json``, ``report.md`` and the three PNGs; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ranked = sorted(rows, key=lambda r: r["eval_loss"] if r["eval_loss"] is not None else math.inf)
    has_eval = any("similarity" in r for r in rows)
    has_draft = any("similarity_draft" in r for r in rows)
    head = ["variant", "final eval loss", "best eval loss", "trainable params", "steps", "train s"]
    if has_eval:
        head += ["similarity", "recompiles", "behaves same"]
    if has_draft:
        head += ["similarity +draft", "recompiles +draft", "behaves same +draft"]
    head += ["grad norm attention", "grad norm mlp", "grad norm total"]
    lines = [
        f"# Experiment `{exp.name}`",
        "",
        f"Same base, data, seed and budget ({exp.max_steps} optimizer steps) for every variant; "
        "eval loss is the completion cross-entropy (nats/token) on the validation split; "
        f"gradient norms are pre-clip L2 norms, mean over the steps measured (1, then every "
        f"{exp.grad_norm_steps}; a phased variant has only its phase's groups at each step)"
        + (
            f"; similarity / recompiles / behaves same over {rows[0].get('n_functions')} "
            "test functions, greedy, prompted without the structural draft (+draft: with it, "
            "as in fine-tuning)."
            if has_eval
            else "."
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in ranked:
        g = r.get("grad_norm_mean", {})
        cells = [
            r["variant"],
            _fmt(r["eval_loss"], ".4f"),
            _fmt(r["best_eval_loss"], ".4f"),
            f"{r['trainable_params']:,}",
            str(r["steps"]),
            _fmt(r["seconds"], ".0f"),
        ]
        for suffix, shown in (("", has_eval), ("_draft", has_draft)):
            if shown:
                cells += [
                    _fmt(r.get(f"similarity{suffix}"), ".3f"),
                    # unchecked (evaluate.behaviour off) is "–", not 0 %
                    _fmt(
                        r.get(f"recompiles{suffix}")
                        if r.get(f"recompile_checked{suffix}")
                        else None,
                        ".0%",
                    ),
                    _fmt(
                        r.get(f"behaves_same{suffix}")
                        if r.get(f"behaviour_checked{suffix}")
                        else None,
                        ".0%",
                    ),
                ]
        cells += [
            _fmt(g.get("attention"), ".3g"),
            _fmt(g.get("mlp"), ".3g"),
            _fmt(g.get("total"), ".3g"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if (
        len(ranked) >= 2
        and ranked[0]["eval_loss"] is not None
        and ranked[1]["eval_loss"] is not None
    ):
        a, b = ranked[0], ranked[1]
        lines += [
            "",
            (
                f"Lowest final eval loss: **{a['variant']}**, {b['eval_loss'] - a['eval_loss']:.4f}"
                f" nats/token ({(b['eval_loss'] - a['eval_loss']) / b['eval_loss']:.1%}) below the"
                f" runner-up {b['variant']}."
            ),
        ]
    lines += [
        "",
        "![eval loss](eval_loss.png)",
        "",
        "![final metrics](final_metrics.png)",
        "",
        "![gradient norms](gradient_norms.png)",
        "",
    ]
    atomic.write_json(
        out_dir / "results.json",
        {"experiment": exp.name, "max_steps": exp.max_steps, "variants": rows},
    )
    atomic.write_text(out_dir / "report.md", "\n".join(lines))
    _plots(rows, out_dir)
    return [
        str(out_dir / f)
        for f in (
            "results.json",
            "report.md",
            "eval_loss.png",
            "final_metrics.png",
            "gradient_norms.png",
        )
    ]


_COLOURS = {"attention": "tab:blue", "mlp": "tab:orange", "total": "tab:green"}


def _plots(rows: list[dict[str, Any]], out_dir: Path) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        with atomic.atomic_path(out_dir / name) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for r in rows:
        if r["eval_losses"]:
            ax.plot(*zip(*r["eval_losses"]), "o-", ms=3, lw=1.2, label=r["variant"])
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("eval loss (nats/token)")
    ax.set_title("validation loss per variant")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, "eval_loss.png")

    metrics = [("eval_loss", "final eval loss")] + [
        (k, t)
        for k, t in (
            ("similarity", "similarity"),
            ("recompiles", "recompiles"),
            ("similarity_draft", "similarity +draft"),
            ("recompiles_draft", "recompiles +draft"),
        )
        if any(k in r for r in rows)
    ]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 4), dpi=100, squeeze=False)
    for ax, (k, t) in zip(axes[0], metrics):
        ax.bar(range(len(rows)), [r.get(k) or 0.0 for r in rows])
        ax.set_xticks(
            range(len(rows)), [r["variant"] for r in rows], rotation=45, ha="right", fontsize=8
        )
        ax.set_title(t)
        ax.grid(alpha=0.3, axis="y")
    save(fig, "final_metrics.png")

    n = len(rows)
    cols = min(3, n)
    fig, axes = plt.subplots(
        math.ceil(n / cols),
        cols,
        figsize=(4.2 * cols, 3.2 * math.ceil(n / cols)),
        dpi=100,
        squeeze=False,
        sharey=True,
    )
    for ax, r in zip(axes.flat, rows):
        p = out_dir / r["variant"] / "gradient_norms.groups.csv"
        series: dict[str, list[tuple[int, float]]] = {}
        if p.is_file():
            with p.open() as f:
                for row in csv.DictReader(f):
                    if row["group"] in ("attention", "mlp", "total"):
                        series.setdefault(row["group"], []).append(
                            (int(row["step"]), float(row["norm"]))
                        )
        steps = sorted({s for pts in series.values() for s, _ in pts})
        for g in ("attention", "mlp", "total"):  # fixed colours; a gap where a group is frozen
            got = dict(series.get(g, []))
            if got:
                ys = [got.get(s, float("nan")) for s in steps]
                ax.plot(steps, ys, ".-", lw=1, label=g, color=_COLOURS[g])
        ax.set_yscale("log")
        ax.set_title(r["variant"], fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("pre-clip gradient L2 norm by group")
    save(fig, "gradient_norms.png")
