"""Aggregation of function scores, the report (``report.json``, ``report.md``) and its plots.

Aggregates are over functions: means of per-function metrics, the paper's two shares
(arXiv 2506.19624: similarity > 0.8, edit distance < 0.4), corpus BLEU, micro-averaged fact
precision / recall (summed overlaps over summed counts), and the shares of *all* evaluated
functions that recompile and that behave the same (an unchecked or undetermined function counts
as not the same; the number checked is reported beside it). Aggregate fact precision is None
("–") when the system claimed no fact at all, recall None when no function had one. Plots (matplotlib, Agg backend):
similarity histogram and CDF, edit-distance box plot, similarity vs edit-distance scatter.
"""

from __future__ import annotations

import html
import logging
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from evmlm import atomic
from evmlm.evaluate.runner import MODEL, FunctionScore

log = logging.getLogger(__name__)

CATEGORIES = ("length", "visibility", "inline_assembly", "package", "setting")
_ASSEMBLY = re.compile(r"\bassembly\s*(\(|\"|\{)")
HEADLINE = (
    ("similarity_mean", "semantic similarity", True),
    ("edit_distance_mean", "edit distance", False),
    ("bleu_mean", "BLEU", True),
    ("rouge_l_mean", "ROUGE-L", True),
    ("structural_f1_mean", "structure F1", True),
    ("behaves_same", "behaves the same", True),
)


def category_of(record: Mapping[str, Any], category: str) -> str:
    """The record's value in ``category`` (one of :data:`CATEGORIES`).

    ``length``: Solidity whitespace tokens (``n_solidity_tokens``) bucketed short (< 40),
    medium (40–119), long (≥ 120); ``inline_assembly``: yes/no; others: the record's field.
    """
    if category == "length":
        n = int(record.get("n_solidity_tokens") or len(str(record.get("solidity", "")).split()))
        return "short (<40 tokens)" if n < 40 else "medium (40-119)" if n < 120 else "long (>=120)"
    if category == "inline_assembly":
        return "yes" if _ASSEMBLY.search(str(record.get("solidity", ""))) else "no"
    if category == "package":
        return str(record.get("source_package") or "?")
    if category == "setting":
        return str(record.get("setting") or "?")
    return str(record.get(category) or "?")


def aggregate(scores: Sequence[FunctionScore], references: Mapping[str, str]) -> dict[str, Any]:
    """Aggregate metrics of one system's scores (see the module docstring); ``references``: id → source."""
    from evmlm.evaluate.metrics import corpus_bleu, summary_figures
    from evmlm.evaluate.structure import FACT_KINDS, precision_recall

    n = len(scores)
    if n == 0:
        return {"n": 0}
    sims = [s.similarity for s in scores]
    eds = [s.edit_distance for s in scores]
    out: dict[str, Any] = {
        "n": n,
        "similarity_mean": statistics.fmean(sims),
        "similarity_median": statistics.median(sims),
        "edit_distance_mean": statistics.fmean(eds),
        "edit_distance_median": statistics.median(eds),
        **summary_figures(sims, eds),
        "bleu_mean": statistics.fmean(s.bleu for s in scores),
        "corpus_bleu": corpus_bleu(
            [references[s.id] for s in scores], [s.hypothesis for s in scores]
        ),
        "rouge_l_mean": statistics.fmean(s.rouge_l for s in scores),
        "structural_f1_mean": statistics.fmean(s.structural_f1 for s in scores),
        "signature_match": sum(s.signature_match for s in scores) / n,
        "parses": sum(s.parses for s in scores) / n,
        "recompiles": sum(s.recompiles is True for s in scores) / n,
        "recompile_checked": sum(s.recompiles is not None for s in scores),
        "behaves_same": sum(s.behaves_same is True for s in scores) / n,
        "behaviour_checked": sum(s.behaves_same is not None for s in scores),
        "funnel": funnel(scores),
        "empty_outputs": sum(not s.hypothesis.strip() for s in scores),
        "seconds_mean": statistics.fmean(s.seconds for s in scores),
    }
    for kind in (*FACT_KINDS, "all"):
        o = sum(s.facts.get(kind, [0, 0, 0])[0] for s in scores)
        h = sum(s.facts.get(kind, [0, 0, 0])[1] for s in scores)
        r = sum(s.facts.get(kind, [0, 0, 0])[2] for s in scores)
        p, rc = precision_recall(o, h, r)
        suffix = "" if kind == "all" else f"_{kind}"
        out[f"fact_precision{suffix}"] = (
            p if h else None
        )  # undefined when the system claimed no fact at all
        out[f"fact_recall{suffix}"] = (
            rc if r else None
        )  # undefined when no function had such a fact
    return out


def funnel(scores: Sequence[FunctionScore]) -> dict[str, int]:
    """Counts of one system's functions at each step: ``n`` → ``parses`` → ``compiles`` →
    ``selector_present`` → ``behaves_same``; beside them ``undetermined`` (compiled, selector
    present, behaviour not decidable: e.g. the original only reverts with empty data),
    ``differs`` and ``not_checked`` (parses but no compile result to check against). The
    steps nest: each counts functions that passed every step before it."""
    out = {
        "n": len(scores),
        "parses": 0,
        "compiles": 0,
        "selector_present": 0,
        "behaves_same": 0,
        "undetermined": 0,
        "differs": 0,
        "not_checked": 0,
    }
    for s in scores:
        if not s.parses:
            continue
        out["parses"] += 1
        if s.recompiles is None:
            out["not_checked"] += 1
            continue
        if not s.recompiles:
            continue
        out["compiles"] += 1
        if not s.selector_present:
            continue
        out["selector_present"] += 1
        if s.behaves_same is True:
            out["behaves_same"] += 1
        elif s.behaves_same is False:
            out["differs"] += 1
        else:
            out["undetermined"] += 1
    return out


def build_report(
    records: Sequence[Mapping[str, Any]],
    scores: Mapping[str, Sequence[FunctionScore]],
    *,
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """The report as plain data: overall and per-category aggregates per system, findings, functions."""
    refs = {str(r["id"]): str(r["solidity"]) for r in records}
    systems = list(scores)
    overall = {sys: aggregate(scores[sys], refs) for sys in systems}
    by_cat: dict[str, dict[str, dict[str, Any]]] = {}
    for cat in CATEGORIES:
        groups: dict[str, set[str]] = defaultdict(set)
        for r in records:
            groups[category_of(r, cat)].add(str(r["id"]))
        by_cat[cat] = {
            val: {sys: aggregate([s for s in scores[sys] if s.id in ids], refs) for sys in systems}
            for val, ids in sorted(groups.items())
        }
    functions = []
    for r in records:
        rid = str(r["id"])
        functions.append(
            {
                "id": rid,
                "contract": r.get("contract"),
                "selector": r.get("selector"),
                "signature": r.get("signature"),
                "categories": {c: category_of(r, c) for c in CATEGORIES},
                "scores": {
                    sys: next(s.to_json() for s in scores[sys] if s.id == rid) for sys in systems
                },
            }
        )
    return {
        **meta,
        "systems": systems,
        "n_functions": len(records),
        "overall": overall,
        "by_category": by_cat,
        "findings": findings(overall),
        "functions": functions,
    }


def findings(overall: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Plain-language findings; always states whether the model beats nearest-neighbour retrieval."""
    out = []
    model, retr = overall.get(MODEL), overall.get("retrieval")
    if model and retr and model.get("n"):
        worse = []
        for key, label, higher in HEADLINE:
            a, b = model.get(key), retr.get(key)
            if a is None or b is None:
                continue
            if (a <= b) if higher else (a >= b):
                worse.append(f"{label} {a:.3f} vs {b:.3f}")
        if len(worse) == len([k for k, _, _ in HEADLINE if k in model and k in retr]):
            out.append(
                f"The model does NOT beat nearest-neighbour retrieval on any headline metric ({'; '.join(worse)})."
            )
        elif worse:
            out.append(
                f"The model does not beat nearest-neighbour retrieval on: {'; '.join(worse)}."
            )
        else:
            out.append("The model beats nearest-neighbour retrieval on every headline metric.")
    ver = overall.get("verified")
    if ver and ver.get("n"):
        singles = {
            k: v
            for k, v in overall.items()
            if k in ("structural", MODEL, "model_draft") and v.get("n")
        }
        if singles:
            best = max(singles, key=lambda k: singles[k]["behaves_same"])
            cmp = "at least" if ver["behaves_same"] >= singles[best]["behaves_same"] else "BELOW"
            out.append(
                f"verified behaves the same {ver['behaves_same']:.0%}: {cmp} the best single system ({best} {singles[best]['behaves_same']:.0%})."
            )
        stub = overall.get("signature_stub")
        if stub and stub.get("n"):
            beats = "beats" if ver["similarity_mean"] > stub["similarity_mean"] else "does NOT beat"
            out.append(
                f"verified {beats} the signature stub on similarity ({ver['similarity_mean']:.3f} vs {stub['similarity_mean']:.3f})."
            )
    orc = overall.get("oracle")
    if orc and orc.get("n"):
        f = orc.get("funnel") or {}
        lost = f.get("n", 0) - f.get("behaves_same", 0)
        out.append(
            f"oracle (the source itself): behaves the same {orc['behaves_same']:.0%} ({lost} lost: {f.get('undetermined', 0)} undetermined, "
            f"{f.get('n', 0) - f.get('compiles', 0) - f.get('not_checked', 0)} not compiling, {f.get('differs', 0)} differing); "
            "anything lost here is the evaluator's, not a decompiler's."
        )
    for sys, agg in overall.items():
        if agg.get("n"):
            out.append(
                f"{sys}: similarity > 0.8 for {agg['share_sim_gt_0.8']:.0%}, edit distance < 0.4 for {agg['share_edit_lt_0.4']:.0%}, "
                f"recompiles {agg['recompiles']:.0%}, behaves the same {agg['behaves_same']:.0%} ({agg['behaviour_checked']} checked), "
                f"fact precision {_fmt(agg['fact_precision'])} / recall {_fmt(agg['fact_recall'])}."
            )
    return out


# ----------------------------------------------------------------------------------- plots


def write_plots(scores: Mapping[str, Sequence[FunctionScore]], out_dir: Path) -> list[str]:
    """Write the paper-style figures as PNG into ``out_dir``; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    systems = [s for s in scores if scores[s]]
    files = []

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.linspace(-0.2, 1.0, 25)
    for sys in systems:
        sims = np.array([s.similarity for s in scores[sys]])
        ax1.hist(sims, bins=bins, alpha=0.45, label=sys)
        xs = np.sort(sims)
        ax2.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", label=sys)
    ax1.axvline(0.8, color="k", ls="--", lw=0.8)
    ax2.axvline(0.8, color="k", ls="--", lw=0.8)
    ax1.set(
        xlabel="semantic similarity (cosine, all-MiniLM-L6-v2)",
        ylabel="functions",
        title="Similarity histogram",
    )
    ax2.set(xlabel="semantic similarity", ylabel="share of functions ≤ x", title="Similarity CDF")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    files.append(_save(fig, out_dir / "similarity_hist_cdf.png"))

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot([[s.edit_distance for s in scores[sys]] for sys in systems], tick_labels=systems)
    ax.axhline(0.4, color="k", ls="--", lw=0.8)
    ax.set(ylabel="normalised edit distance", title="Edit distance by system")
    fig.tight_layout()
    files.append(_save(fig, out_dir / "edit_distance_box.png"))

    fig, ax = plt.subplots(figsize=(6, 5))
    for sys in systems:
        ax.scatter(
            [s.edit_distance for s in scores[sys]],
            [s.similarity for s in scores[sys]],
            s=14,
            alpha=0.6,
            label=sys,
        )
    ax.axhline(0.8, color="k", ls="--", lw=0.8)
    ax.axvline(0.4, color="k", ls="--", lw=0.8)
    ax.set(
        xlabel="normalised edit distance",
        ylabel="semantic similarity",
        title="Similarity vs edit distance",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.append(_save(fig, out_dir / "similarity_vs_edit.png"))
    plt.close("all")
    return files


def _save(fig: Any, path: Path) -> str:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path.name


# ----------------------------------------------------------------------------------- markdown


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


_OVERALL_COLUMNS = (
    ("n", "n"),
    ("similarity_mean", "sim"),
    ("share_sim_gt_0.8", "sim>0.8"),
    ("edit_distance_mean", "edit"),
    ("share_edit_lt_0.4", "edit<0.4"),
    ("bleu_mean", "BLEU"),
    ("corpus_bleu", "corpus BLEU"),
    ("rouge_l_mean", "ROUGE-L"),
    ("structural_f1_mean", "struct F1"),
    ("signature_match", "sig match"),
    ("fact_precision", "fact P"),
    ("fact_recall", "fact R"),
    ("parses", "parses"),
    ("recompiles", "recompiles"),
    ("behaves_same", "behaves same"),
    ("behaviour_checked", "checked"),
)
_FACT_COLUMNS = tuple(
    (f"fact_{pr}_{k}", f"{k} {pr[0].upper()}")
    for k in ("call", "write", "event", "guard", "return")
    for pr in ("precision", "recall")
)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def render_markdown(
    report: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    plots: Sequence[str],
    n_examples: int,
) -> str:
    """report.md: summary table, findings, fact table, per-category tables, plots, examples."""
    ov = report["overall"]
    systems = report["systems"]
    lines = [f"# Evaluation report — {report.get('run', '')}".rstrip(" —"), ""]
    lines += [
        f"Model: `{report.get('model')}` · split: `{report.get('split')}` · functions: {report['n_functions']} · "
        f"generated with max {report.get('max_new_tokens')} new tokens · {report.get('seconds', 0):.0f} s",
        "",
    ]
    lines += ["## Findings", "", *(f"- {f}" for f in report["findings"]), ""]
    lines += ["## Overall", ""]
    lines += _table(
        [[sys, *(_fmt(ov[sys].get(k, "")) for k, _ in _OVERALL_COLUMNS)] for sys in systems],
        ["system", *(h for _, h in _OVERALL_COLUMNS)],
    )
    lines += [
        "",
        "sim: cosine of all-MiniLM-L6-v2 embeddings; edit: Levenshtein / max length (whitespace-normalised); "
        "BLEU: sacrebleu on code tokens (0–100); struct F1: tree-sitter statement-kind multiset F1; sig match: strict normalised "
        "signature equality; fact P/R: micro-averaged over calls, storage writes, events, guards, returns; recompiles / behaves same: "
        "share of all functions (spliced into the original contract, same solc and settings; pyrevm differential run); checked: "
        "functions whose behaviour was determined.",
        "",
    ]
    lines += ["## Funnel (functions)", ""]
    steps = (
        "n",
        "parses",
        "compiles",
        "selector_present",
        "behaves_same",
        "undetermined",
        "differs",
        "not_checked",
    )
    rows = []
    for sys in systems:
        f = ov[sys].get("funnel") or {}
        n = max(1, f.get("n", 0))
        rows.append(
            [
                sys,
                *(
                    f"{f.get(k, 0)} ({f.get(k, 0) / n:.0%})" if k != "n" else str(f.get(k, 0))
                    for k in steps
                ),
            ]
        )
    lines += _table(
        rows,
        [
            "system",
            "n",
            "parses",
            "compiles",
            "selector present",
            "behaves same",
            "undetermined",
            "differs",
            "not checked",
        ],
    )
    lines += [
        "",
        "Each step counts the functions that passed every step before it. `oracle` is the original source through "
        "the same checks: below 100% it measures the evaluator, not a decompiler. Undetermined: it compiled with its "
        "selector, but the differential run cannot decide (e.g. the original only reverts with empty data).",
        "",
    ]
    if any(ov[s].get("n") for s in systems if s == "verified"):
        kept: dict[str, int] = defaultdict(int)
        for fn in report["functions"]:
            c = fn["scores"].get("verified", {}).get("candidate")
            if c:
                kept[c] += 1
        lines += [
            "Verified selection kept: " + ", ".join(f"{k} {v}" for k, v in sorted(kept.items())),
            "",
        ]
    lines += ["## Facts by kind (precision / recall)", ""]
    lines += _table(
        [[sys, *(_fmt(ov[sys].get(k, "")) for k, _ in _FACT_COLUMNS)] for sys in systems],
        ["system", *(h for _, h in _FACT_COLUMNS)],
    )
    lines += [""]
    for cat, groups in report["by_category"].items():
        lines += [f"## By {cat.replace('_', ' ')}", ""]
        header = ["value", "n", *(f"{sys} sim / edit / same" for sys in systems)]
        rows = []
        for val, per in groups.items():
            n = next((per[s]["n"] for s in systems if per[s].get("n")), 0)
            rows.append(
                [
                    val,
                    str(n),
                    *(
                        f"{per[s]['similarity_mean']:.2f} / {per[s]['edit_distance_mean']:.2f} / {per[s]['behaves_same']:.2f}"
                        if per[s].get("n")
                        else "–"
                        for s in systems
                    ),
                ]
            )
        lines += _table(rows, header) + [""]
    if plots:
        lines += ["## Figures", "", *(f"![{p}]({p})" for p in plots), ""]
    lines += _examples(report, records, n_examples)
    return "\n".join(lines) + "\n"


def _examples(report: Mapping[str, Any], records: Sequence[Mapping[str, Any]], n: int) -> list[str]:
    """``n`` functions spread over the model's similarity range, source and outputs side by side."""
    if n <= 0 or not report["functions"]:
        return []
    funcs = sorted(
        report["functions"],
        key=lambda f: f["scores"].get(MODEL, next(iter(f["scores"].values())))["similarity"],
    )
    k = min(n, len(funcs))
    picks = (
        [funcs[round(i * (len(funcs) - 1) / max(1, k - 1))] for i in range(k)]
        if k > 1
        else funcs[:1]
    )
    by_id = {str(r["id"]): r for r in records}
    systems = report["systems"]
    lines = ["## Examples (source and decompilations side by side)", ""]
    for f in picks:
        r = by_id[f["id"]]
        sc = f["scores"]
        lines.append(f"### `{f['contract']}` {f['selector']} {f.get('signature') or ''}")
        lines.append("")
        lines.append(
            "<table><tr><th>source</th>"
            + "".join(
                f"<th>{html.escape(s)} (sim {sc[s]['similarity']:.2f}, edit {sc[s]['edit_distance']:.2f})</th>"
                for s in systems
            )
            + "</tr><tr>"
        )
        for text in [r["solidity"], *(sc[s]["hypothesis"] for s in systems)]:
            lines.append(f'<td valign="top"><pre>{html.escape(_clip(text))}</pre></td>')
        lines.append("</tr></table>")
        lines.append("")
    return lines


def _clip(text: str, max_lines: int = 40) -> str:
    ls = text.splitlines() or ["(empty)"]
    return "\n".join(
        ls[:max_lines]
        + ([f"... ({len(ls) - max_lines} more lines)"] if len(ls) > max_lines else [])
    )


def write_report(
    out_dir: Path,
    report: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    scores: Mapping[str, Sequence[FunctionScore]],
    n_examples: int,
) -> dict[str, str]:
    """Write report.json, report.md and the plots atomically into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(scores, out_dir)
    atomic.write_json(out_dir / "report.json", report)
    atomic.write_text(out_dir / "report.md", render_markdown(report, records, plots, n_examples))
    return {
        "report_json": str(out_dir / "report.json"),
        "report_md": str(out_dir / "report.md"),
        **{p: str(out_dir / p) for p in plots},
    }
