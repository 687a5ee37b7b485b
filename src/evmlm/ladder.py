"""``evmlm ladder``: the quality ladder of base models at one wall-clock training budget.

Rungs (issue #16; docs/base-models.md, "The ladder"):

1. ``scratch-small``: today's default, the ``small`` preset pretrained from scratch on the
   run's tokenizer, then LoRA fine-tuned;
2. ``smollm2-ft``: SmolLM2-135M (``model.base: smollm2-135m``), LoRA fine-tuned only;
3. ``smollm2-cpt-ft``: SmolLM2-135M, continued-pretrained (:mod:`evmlm.train.cpt`), then LoRA
   fine-tuned.

Every rung gets the same training wall-clock budget (``budget_s``), split between its training
stages by :attr:`Rung.shares` (each stage's ``time_budget_s``), and is evaluated by the
``evaluate`` stage on the same sampled test functions (same ``evaluate.seed`` and
``max_functions``), so the evaluation report's every metric is comparable; the ``model_draft``
system of each report is the rung's model with the structural draft in the prompt.

The data stages are not run: each rung's folder ``<out>/<rung>/`` links ``corpus``,
``compile``, ``lift`` and ``dataset`` to a finished run (``data_run``); then the chain from
``tokenizer`` on runs in the rung's folder (skipped when current, as in ``evmlm run``).
Outputs: ``ladder.json``, ``ladder.md`` (the table), ``ladder.png`` (metric vs training minutes).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from evmlm import atomic
from evmlm.config import ConfigError, RunConfig, dump_yaml, load_config, parse_overrides
from evmlm.errors import EvmlmError

log = logging.getLogger(__name__)

DATA_STAGES = ("corpus", "compile", "lift", "dataset")
TRAIN_STAGES = ("pretrain", "cpt", "finetune")
#: What the table shows per system, from the evaluation report's ``overall``.
METRICS = (
    ("similarity_mean", "similarity"),
    ("edit_distance_mean", "edit distance"),
    ("bleu_mean", "BLEU"),
    ("rouge_l_mean", "ROUGE-L"),
    ("recompiles", "recompiles"),
    ("behaves_same", "behaves same"),
)


class LadderError(EvmlmError):
    """A ladder that cannot run: no finished data run, an unknown rung, a bad budget."""


@dataclass(frozen=True)
class Rung:
    """One rung: config overrides and how its training budget is shared between stages."""

    name: str
    overrides: Mapping[str, Any]
    shares: Mapping[str, float] = field(default_factory=dict)  # stage -> share of the budget

    def __post_init__(self) -> None:
        if set(self.shares) - set(TRAIN_STAGES) or abs(sum(self.shares.values()) - 1) > 1e-6:
            raise ValueError(f"rung {self.name}: shares must be over {TRAIN_STAGES}, summing to 1")


#: fine-tuning a 135M pretrained model: lr 3e-4 (the issue's measured 10-minute recipe) rather
#: than the 1e-3 tuned for the 4M scratch model; prompt + completion <= 768 tokens.
_SMOL_FT = {"finetune.learning_rate": 3e-4, "finetune.max_length": 768}

#: seconds per CPT step of SmolLM2-135M (LoRA r 16 on all linear layers + embeddings, batch
#: 4 x 512 tokens, 2 threads; the issue measured ~255 tokens/s for such LoRA): sets
#: ``cpt.max_steps`` from the time budget, so the linear decay ends near the budget's end.
CPT_STEP_S = 8.0

RUNGS: tuple[Rung, ...] = (
    Rung(
        "scratch-small",
        # the 4M scratch model's recipe, whatever the base config says (configs/default.yaml
        # now fine-tunes SmolLM2 with lr 3e-4, <= 768 tokens)
        {"model.base": "scratch", "finetune.learning_rate": 1e-3, "finetune.max_length": 1024},
        {"pretrain": 2 / 3, "finetune": 1 / 3},
    ),
    Rung("smollm2-ft", {"model.base": "smollm2-135m", **_SMOL_FT}, {"finetune": 1.0}),
    Rung(
        "smollm2-cpt-ft",
        {"model.base": "smollm2-135m", "cpt.enabled": True, **_SMOL_FT},
        {"cpt": 0.5, "finetune": 0.5},
    ),
)


def rung_config(
    config_path: Path | None,
    flags: Sequence[str],
    rung: Rung,
    out_dir: Path,
    budget_s: float,
) -> RunConfig:
    """The run config of ``rung``: the file + flags, the rung's overrides, its stages' time
    budgets (share x ``budget_s``; a training stage with no share is switched off), and the
    rung's own run folder ``out_dir/<rung>``."""
    over: dict[str, Any] = dict(rung.overrides)
    for stage in TRAIN_STAGES:
        share = rung.shares.get(stage, 0.0)
        if share:
            over[f"{stage}.time_budget_s"] = round(share * budget_s, 1)
    if rung.shares.get("cpt"):
        # the linear decay (after warmup ratio 0.1) should end when the time budget does
        over.setdefault("cpt.max_steps", max(10, round(rung.shares["cpt"] * budget_s / CPT_STEP_S)))
    over["run.runs_dir"] = str(out_dir)
    over["run.name"] = rung.name
    return load_config(config_path, {**parse_overrides(list(flags)), **over})


def _link_data(run_dir: Path, data_run: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    for s in DATA_STAGES:
        src, dst = (data_run / s).resolve(), run_dir / s
        if not (src / "_stage.json").is_file():
            raise LadderError(
                f"{data_run}: stage {s} has not finished there; run `evmlm run --until dataset`"
                " for that run first (or pass --data-run)"
            )
        if dst.is_symlink() and dst.resolve() == src:
            continue
        if dst.exists() or dst.is_symlink():
            raise LadderError(f"{dst}: exists and is not a link to {src}; remove it")
        os.symlink(src, dst)


def run_rung(cfg: RunConfig, data_run: Path) -> dict[str, Any]:
    """Run the chain from ``tokenizer`` for one rung; returns its stage records by name."""
    from evmlm.pipeline import STAGES, run_stage

    run_dir = cfg.run_dir
    _link_data(run_dir, data_run)
    atomic.write_text(run_dir / "config.yaml", dump_yaml(cfg))
    recs = {}
    for stage in STAGES:
        if stage.name in DATA_STAGES:
            continue
        t0 = time.perf_counter()
        recs[stage.name] = run_stage(cfg, stage, run_dir)
        log.info("%s / %s: %.0f s", run_dir.name, stage.name, time.perf_counter() - t0)
    return recs


def _train_seconds(recs: Mapping[str, Any]) -> dict[str, float]:
    """Seconds of training proper per stage (the Trainer's runtime, from the stage summaries)."""
    out = {}
    for s in TRAIN_STAGES:
        summary = (recs.get(s) or {}).get("summary") or {}
        if summary.get("seconds") is not None and summary.get("enabled", True):
            out[s] = float(summary["seconds"])
    return out


def summarise(name: str, recs: Mapping[str, Any]) -> dict[str, Any]:
    """One ladder row: training seconds per stage, wall seconds per stage, CPT held-out loss,
    and the evaluation's ``overall`` block."""
    ev = (recs.get("evaluate") or {}).get("summary") or {}
    cpt = (recs.get("cpt") or {}).get("summary") or {}
    return {
        "rung": name,
        "train_seconds": _train_seconds(recs),
        "stage_seconds": {k: (v or {}).get("seconds") for k, v in recs.items()},
        "cpt_val_loss": (
            [cpt["val_loss_before"], cpt["val_loss_after"]] if "val_loss_before" in cpt else None
        ),
        "finetune": {
            k: ((recs.get("finetune") or {}).get("summary") or {}).get(k)
            for k in ("steps", "eval_loss", "tokens_per_second")
        },
        "n_functions": ev.get("n_functions"),
        "overall": ev.get("overall") or {},
    }


def render(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """The ladder as Markdown: one row per rung and system, the baselines once."""
    head = ["rung", "system", "train min"] + [label for _, label in METRICS] + ["n"]
    lines = [
        f"# Quality ladder ({meta['budget_min']:g} training minutes per rung)",
        "",
        f"Data: `{meta['data_run']}`; {meta['n_functions']} sampled `{meta['split']}` functions"
        f" (seed {meta['seed']}), the same for every rung; {meta['max_new_tokens']} new tokens"
        f" (greedy). Load average at start: {meta['load_start']}, at end: {meta['load_end']}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]

    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else "-" if v is None else str(v)

    def row(rung: str, system: str, minutes: Any, o: Mapping[str, Any]) -> str:
        cells = [rung, system, fmt(minutes)] + [fmt(o.get(k)) for k, _ in METRICS]
        return "| " + " | ".join(cells + [fmt(o.get("n"))]) + " |"

    for r in rows:
        minutes = f"{sum(r['train_seconds'].values()) / 60:.1f}"
        for system in ("model", "model_draft"):
            if system in r["overall"]:
                lines.append(row(r["rung"], system, minutes, r["overall"][system]))
    if rows:
        for system in ("retrieval", "signature_stub", "structural", "panoramix"):
            o = rows[-1]["overall"].get(system)
            if o and o.get("n"):
                lines.append(row("baseline", system, None, o))
    lines += ["", "Training seconds per stage and CPT held-out Solidity loss (nats/token):", ""]
    for r in rows:
        cpt = r["cpt_val_loss"]
        loss = f"; CPT held-out loss {cpt[0]:.3f} -> {cpt[1]:.3f}" if cpt else ""
        secs = ", ".join(f"{k} {v:.0f} s" for k, v in r["train_seconds"].items())
        ft = r["finetune"]
        lines.append(
            f"- `{r['rung']}`: {secs}{loss}; fine-tune {ft.get('steps')} steps,"
            f" eval loss {fmt(ft.get('eval_loss'))}"
        )
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Similarity (left) and recompiles (right) vs training minutes: one marker per rung and
    system, the baselines as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (key, label) in zip(axes, (METRICS[0], METRICS[4])):
        for r in rows:
            minutes = sum(r["train_seconds"].values()) / 60
            for system, marker in (("model", "o"), ("model_draft", "s")):
                v = r["overall"].get(system, {}).get(key)
                if v is not None:
                    ax.scatter([minutes], [v], marker=marker, label=f"{r['rung']} ({system})")
        if rows:
            for system, style in (("retrieval", "--"), ("signature_stub", ":")):
                v = rows[-1]["overall"].get(system, {}).get(key)
                if v is not None:
                    ax.axhline(v, linestyle=style, color="grey", label=system)
        ax.set_xlabel("training minutes")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def run_ladder(
    config_path: Path | None,
    flags: Sequence[str],
    *,
    out_dir: Path,
    data_run: Path,
    budget_s: float,
    rungs: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run the chosen rungs (default: all of :data:`RUNGS`) and write the ladder report.

    ``flags``: ``--section.field=value`` overrides for every rung (e.g. the evaluation's
    ``--evaluate.max_functions``). Raises LadderError for an unknown rung or a data run without
    a finished dataset; ConfigError for bad flags.
    """
    if budget_s <= 0:
        raise LadderError(f"--budget-min: {budget_s / 60:g} must be > 0 minutes")
    known = {r.name: r for r in RUNGS}
    chosen = list(rungs or known)
    for n in chosen:
        if n not in known:
            raise LadderError(f"--rung {n}: unknown rung (known: {', '.join(known)})")
    load_start = round(os.getloadavg()[0], 1)
    rows = []
    cfg = None
    for n in chosen:
        cfg = rung_config(config_path, flags, known[n], out_dir, budget_s)
        log.info("ladder: rung %s", n)
        rows.append(summarise(n, run_rung(cfg, data_run)))
        atomic.write_json(out_dir / "ladder.json", {"rows": rows})
    if cfg is None:
        raise ConfigError("ladder: no rung chosen")
    ev = cfg.evaluate
    meta = {
        "budget_min": budget_s / 60,
        "data_run": str(data_run),
        "split": ev.split,
        "n_functions": rows[-1]["n_functions"] if rows else 0,
        "seed": ev.seed,
        "max_new_tokens": ev.max_new_tokens,
        "load_start": load_start,
        "load_end": round(os.getloadavg()[0], 1),
    }
    atomic.write_json(out_dir / "ladder.json", {"meta": meta, "rows": rows})
    atomic.write_text(out_dir / "ladder.md", render(rows, meta))
    plot(rows, out_dir / "ladder.png")
    return {"meta": meta, "rows": rows, "report": str(out_dir / "ladder.md")}


def ladder_line(result: Mapping[str, Any]) -> str:
    """A one-line summary: each rung's model similarity / recompiles."""
    parts = []
    for r in result["rows"]:
        o = r["overall"].get("model", {})
        parts.append(
            f"{r['rung']} sim {o.get('similarity_mean', float('nan')):.3f}"
            f" recompiles {o.get('recompiles', float('nan')):.2f}"
        )
    return "; ".join(parts) + f" ({result['report']})"
