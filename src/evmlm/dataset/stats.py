"""Dataset statistics (``stats.json``), histograms (PNG) and the dataset card (``README.md``).

The statistics mirror the paper's ``get_dataset_statistics`` (arXiv 2506.19624): total pairs,
average lengths, visibility and state-mutability distribution, complexity range (cyclomatic,
from the lifter's CFG), per-package and per-compiler counts, plus the build's filter, dedup and
split counts. Nothing time-dependent is written, so a rebuild gives identical files.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evmlm import atomic
from evmlm.dataset.dedup import body_hash
from evmlm.dataset.split import SPLITS

log = logging.getLogger(__name__)

HISTOGRAMS: tuple[tuple[str, str], ...] = (
    ("n_tac_lines", "TAC lines per function"),
    ("n_solidity_tokens", "Solidity whitespace tokens per function"),
    ("complexity", "cyclomatic complexity per function"),
)


def _dist(values: Sequence[Any]) -> dict[str, int]:
    return dict(sorted(Counter(str(v) for v in values).items(), key=lambda kv: (-kv[1], kv[0])))


def _summary(values: Sequence[int]) -> dict[str, float | int]:
    if not values:
        return {"min": 0, "max": 0, "mean": 0.0, "median": 0}
    s = sorted(values)
    return {"min": s[0], "max": s[-1], "mean": round(sum(s) / len(s), 2), "median": s[len(s) // 2]}


def dataset_statistics(
    records: Sequence[Mapping[str, Any]], build: Mapping[str, Any]
) -> dict[str, Any]:
    """Statistics of the final records plus the build counts in ``build`` (filters, dedup, ...)."""
    public = [r for r in records if r.get("visibility") in ("public", "external")]
    with_sig = sum(1 for r in public if r.get("signature"))
    return {
        "total_pairs": len(records),
        "splits": {s: sum(1 for r in records if r["split"] == s) for s in SPLITS},
        "distinct_functions": len({body_hash(r["solidity"]) for r in records}),
        "distinct_functions_per_split": {
            s: len({body_hash(r["solidity"]) for r in records if r["split"] == s}) for s in SPLITS
        },
        "clusters": len({r["cluster_id"] for r in records}),
        "n_tac_lines": _summary([r["n_tac_lines"] for r in records]),
        "n_solidity_tokens": _summary([r["n_solidity_tokens"] for r in records]),
        "complexity": _summary([r["complexity"] for r in records]),
        "visibility": _dist([r["visibility"] for r in records]),
        "state_mutability": _dist([r["state_mutability"] for r in records]),
        "kind": _dist([r.get("kind") for r in records]),
        "origin": _dist([r.get("origin") for r in records]),
        "per_package": _dist([r["source_package"] for r in records]),
        "per_compiler": _dist([r["compiler_version"] for r in records]),
        "per_setting": _dist([r["setting"] for r in records]),
        "signature_coverage": {
            "public_functions": len(public),
            "with_signature": with_sig,
            "share": round(with_sig / len(public), 4) if public else 0.0,
        },
        "token_unit": "whitespace tokens (str.split); the project tokenizer is trained after this stage",
        "build": dict(build),
    }


def write_histograms(records: Sequence[Mapping[str, Any]], out_dir: Path) -> list[str]:
    """One PNG histogram per :data:`HISTOGRAMS` field (log-scaled counts); return file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for field, title in HISTOGRAMS:
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for s in SPLITS:
            vals = [r[field] for r in records if r["split"] == s]
            if vals:
                ax.hist(vals, bins=50, alpha=0.6, label=f"{s} ({len(vals)})", log=True)
        ax.set_xlabel(title)
        ax.set_ylabel("pairs (log)")
        ax.legend()
        fig.tight_layout()
        name = f"hist_{field}.png"
        with atomic.atomic_path(out_dir / name) as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": None})
        plt.close(fig)
        names.append(name)
    return names


def _table(d: Mapping[str, Any], head: tuple[str, str], limit: int = 15) -> str:
    rows = [f"| {head[0]} | {head[1]} |", "|---|---:|"]
    items = list(d.items())
    if all(isinstance(v, int) for _, v in items):
        items.sort(key=lambda kv: (-kv[1], kv[0]))
    rows += [
        f"| `{k}` | {v:,} |" if isinstance(v, int) else f"| `{k}` | {v} |" for k, v in items[:limit]
    ]
    if len(items) > limit:
        rows.append(f"| … {len(items) - limit} more | |")
    return "\n".join(rows)


def dataset_card(stats: Mapping[str, Any], images: Sequence[str]) -> str:
    """The dataset card (Markdown) for ``README.md``."""
    b = stats["build"]
    filt = b.get("filters", {})
    lines = [
        "# evmlm TAC → Solidity pair dataset",
        "",
        "Function-level pairs: the three-address code (TAC) the evmlm lifter recovers from a contract's",
        "runtime bytecode, and the Solidity source of the function it was compiled from (most-derived",
        "implemented definition, public getters included), with the contract context it uses.",
        "Built by `evmlm dataset build`; format after arXiv 2506.19624 (85/10/5 split, 50–20,000 tokens).",
        "",
        "Load: `datasets.load_from_disk('hf')`, `load_dataset('json', data_files='pairs.jsonl')`,",
        "or `parquet/<split>.parquet`.",
        "",
        "## Size",
        "",
        _table({**stats["splits"], "total": stats["total_pairs"]}, ("split", "pairs")),
        "",
        f"Distinct normalised functions: {stats['distinct_functions']:,}; near-duplicate clusters: {stats['clusters']:,}.",
        f"Public/external functions with a resolved signature in the prompt: {stats['signature_coverage']['with_signature']:,} of "
        f"{stats['signature_coverage']['public_functions']:,} ({100 * stats['signature_coverage']['share']:.1f}%).",
        "",
        "## Build",
        "",
        f"- pairs from corpus contracts: {b.get('pairs_corpus', 0):,}; from generated wrappers (abstract contracts, libraries): {b.get('pairs_wrappers', 0):,}",
        f"- raw pairs: {b.get('raw_pairs', 0):,}; after filters: {b.get('after_filters', 0):,}; after exact dedup: {b.get('after_exact_dedup', 0):,} "
        f"(before near-dup removal); after near-dup removal: {stats['total_pairs']:,}",
        f"- near-dup threshold (MinHash LSH Jaccard): {b.get('near_dup_threshold')}",
        f"- length unit: {stats['token_unit']}",
        "",
        _table(filt, ("filter", "dropped")),
        "",
        "Splits are by group: contract family (package + defining contract name, across versions and",
        "settings) merged with the near-duplicate cluster, so no normalised function body is in two",
        "splits (checked on every build).",
        "",
        "## Lengths and complexity",
        "",
        _table(
            {
                k: f"{v['min']:,} / {v['max']:,} / {v['mean']:,} / {v['median']:,}"
                for k, v in (
                    ("TAC lines", stats["n_tac_lines"]),
                    ("Solidity tokens (whitespace)", stats["n_solidity_tokens"]),
                    ("cyclomatic complexity", stats["complexity"]),
                )
            },
            ("measure", "min / max / mean / median"),
        ),
        "",
        *[f"![{img}]({img})" for img in images],
        "",
        "## Distributions",
        "",
        _table(stats["visibility"], ("visibility", "pairs")),
        "",
        _table(stats["state_mutability"], ("state mutability", "pairs")),
        "",
        _table(stats["per_compiler"], ("compiler", "pairs")),
        "",
        _table(stats["per_setting"], ("setting", "pairs")),
        "",
        _table(stats["per_package"], ("package", "pairs"), limit=40),
        "",
        "## Fields",
        "",
        "`id, contract, source_package, compiler_version, optimizer, runs, evm_version, via_ir, setting, compile_key,",
        "source_path, source_start, source_length (UTF-8 byte offsets), selector, signature, visibility, state_mutability,",
        "kind, defining_contract, origin, tac, solidity, contract_context, n_tac_lines, n_solidity_tokens, complexity,",
        "cluster_id, split`.",
        "",
        "Licences: each pair inherits the licence of its source package (see the corpus manifest).",
        "",
    ]
    return "\n".join(lines)


def write_stats(
    records: Sequence[Mapping[str, Any]], build: Mapping[str, Any], out_dir: str | Path
) -> dict[str, Any]:
    """Write ``stats.json``, the histogram PNGs and ``README.md``; return the statistics."""
    out = Path(out_dir)
    stats = dataset_statistics(records, build)
    atomic.write_json(out / "stats.json", stats)
    images = write_histograms(records, out)
    atomic.write_text(out / "README.md", dataset_card(stats, images))
    return stats
