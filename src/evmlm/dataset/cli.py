"""Library side of the ``evmlm dataset`` commands (the CLI functions stay thin)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from evmlm.dataset.signatures import SignatureDB
from evmlm.errors import EvmlmError

DEFAULT_DB = Path("runs/default/dataset/signatures.tsv")


class NoStatsError(EvmlmError):
    """The dataset folder has no stats.json (the dataset was not built)."""


def read_stats(dataset_dir: Path) -> dict[str, Any]:
    """``stats.json`` of a built dataset. Raises NoStatsError naming the folder."""
    p = dataset_dir / "stats.json"
    if not p.is_file():
        raise NoStatsError(f"{dataset_dir}: no stats.json; run `evmlm dataset build` first")
    return json.loads(p.read_text(encoding="utf-8"))


def format_stats(stats: dict[str, Any]) -> str:
    """A short human-readable summary of ``stats.json``."""
    b = stats["build"]
    s = stats["splits"]
    sig = stats["signature_coverage"]
    lines = [
        f"pairs: {stats['total_pairs']:,} (train {s['train']:,} / validation {s['validation']:,} / test {s['test']:,})",
        f"distinct normalised functions: {stats['distinct_functions']:,} in {stats['clusters']:,} near-dup clusters",
        f"raw pairs: {b['raw_pairs']:,} (corpus {b['pairs_corpus']:,}, wrappers {b['pairs_wrappers']:,}); after filters {b['after_filters']:,}; "
        f"before near-dup removal {b['after_exact_dedup']:,}",
        "filters dropped: " + ", ".join(f"{k} {v:,}" for k, v in b["filters"].items()),
        f"signatures: {sig['with_signature']:,} of {sig['public_functions']:,} public functions ({100 * sig['share']:.1f}%)",
        *(
            f"{label} min/max/mean/median: {v['min']:,} / {v['max']:,} / {v['mean']:,} / {v['median']:,}"
            for label, v in (
                ("cyclomatic complexity", stats["complexity"]),
                ("TAC lines", stats["n_tac_lines"]),
                ("Solidity whitespace tokens", stats["n_solidity_tokens"]),
            )
        ),
        "compilers: "
        + ", ".join(
            f"{k} {v:,}"
            for k, v in sorted(stats["per_compiler"].items(), key=lambda kv: (-kv[1], kv[0]))[:8]
        ),
        "settings: "
        + ", ".join(
            f"{k} {v:,}"
            for k, v in sorted(stats["per_setting"].items(), key=lambda kv: (-kv[1], kv[0]))
        ),
    ]
    return "\n".join(lines)


def signatures_command(
    selectors: Sequence[str],
    *,
    db: Path | None,
    imports: Sequence[Path],
    artifacts: Sequence[Path],
    out: Path | None,
    collisions: bool,
) -> Iterator[str]:
    """Lines to print for ``evmlm dataset signatures``. Raises SignatureFileError for bad files."""
    sdb = SignatureDB()
    path = db or DEFAULT_DB
    if path.is_file():
        sdb.import_file(path)
    elif db is not None:
        raise EvmlmError(
            f"{db}: signature database not found; build the dataset or pass an existing TSV to --db"
        )
    for f in imports:
        sdb.import_file(f)
    for d in artifacts:
        if not d.is_dir():
            raise EvmlmError(f"{d}: not a folder; pass a folder of JSON artifacts to --artifacts")
        sdb.add_artifacts(d)
    if out is not None:
        sdb.save(out)
        yield f"wrote {out}: {len(sdb):,} selectors, {len(sdb.collisions()):,} collisions"
    for sel in selectors:
        found = sdb.lookup(sel)
        yield f"{sel}\t" + (" | ".join(found) if found else "(unknown)")
    if collisions:
        for sel, sigs in sdb.collisions().items():
            yield f"{sel}\t" + " | ".join(sigs)
    if not selectors and not collisions and out is None:
        yield f"{len(sdb):,} selectors, {len(sdb.collisions()):,} collisions"
