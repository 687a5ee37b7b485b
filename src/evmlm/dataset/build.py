"""Build the pair dataset from compile results and lifted contracts.

Steps (each counted in ``stats.json["build"]``):

1. **Pair** (per compile result, in a process pool, resumable): every lifted public function of
   every compiled contract is paired with its most-derived Solidity definition
   (:mod:`evmlm.dataset.pairing`). Each compile result's raw pairs go to a shard
   ``_work/pairs/<digest>.jsonl`` (atomic); a shard that exists is reused, so an interrupted
   build resumes where it stopped (records and shards: :mod:`evmlm.dataset.records`). The
   digest covers the compile key, the lifted TAC and :data:`PAIRING_VERSION`, so a changed
   lifter output re-pairs only what changed.
2. **Wrappers** (:mod:`evmlm.dataset.wrappers`): abstract contracts and libraries get generated
   concrete wrappers, compiled, lifted and paired the same way (also sharded).
3. **Signatures**: a :class:`~evmlm.dataset.signatures.SignatureDB` from every ABI of the
   compile results, the npm JSON artifacts under ``vendor/`` and the configured 4byte files;
   each record's ``signature`` is the database's resolution of its selector.
4. **Filter**, **dedup**, **split** (+ leakage check, which fails the build), **export**,
   **statistics**.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evmlm import atomic
from evmlm.config import DatasetConfig
from evmlm.corpus.packages import repo_root
from evmlm.dataset import dedup as dedup_mod
from evmlm.dataset.export import export
from evmlm.dataset.filters import apply_filters
from evmlm.dataset.labels import label_fields
from evmlm.dataset.pairing import AstIndex
from evmlm.dataset.records import (
    LiftedFn,
    add_draft,
    lifted_functions,
    make_record,
    read_shard,
    setting_fields,
    write_shard,
)
from evmlm.dataset.signatures import SignatureDB
from evmlm.dataset.split import assign_splits, check_leakage
from evmlm.dataset.stats import write_stats
from evmlm.dataset.wrappers import run_wrappers
from evmlm.structural import DRAFT_VERSION

log = logging.getLogger(__name__)

PAIRING_VERSION = 6  # bump when a shard's content would change for the same inputs (4: groups split by package version; 5: the draft field; 6: reached)
WORK_DIR = "_work"


@dataclass(frozen=True)
class LiftedContractRef:
    """One lifted contract of one compile result."""

    source_path: str
    name: str
    functions: tuple[LiftedFn, ...]


@dataclass
class BuildCounts:
    """Counts of one build, written to ``stats.json["build"]``."""

    compile_results: int = 0
    contracts: int = 0
    shards_reused: int = 0
    shards_built: int = 0
    pairing: dict[str, int] = field(
        default_factory=lambda: {
            "resolved": 0,
            "unresolved": 0,
            "no_body": 0,
            "no_tac": 0,
            "failed_results": 0,
        }
    )


def pair_result(
    result: Any,
    contracts: Sequence[LiftedContractRef],
    packages: Mapping[str, str],
    *,
    origin: str = "corpus",
    index: AstIndex | None = None,
    compile_key: str | None = None,
    setting: Any = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Raw pair records for the lifted contracts of one compile result, and pairing counts.

    ``compile_key``/``setting`` override the result's own: a result compiled from the same
    sources with the same compiler under another setting has the same ASTs and method
    identifiers, so one loaded result serves all its settings (``index`` reused too).
    """
    index = index or AstIndex(result.sources, result.asts)
    fields = setting_fields(setting if setting is not None else result.setting)
    key = compile_key or result.key
    artifacts = {(a.source_path, a.name): a for a in result.contracts}
    records: list[dict[str, Any]] = []
    counts = {"resolved": 0, "unresolved": 0, "no_body": 0, "no_tac": 0}
    for c in contracts:
        art = artifacts.get((c.source_path, c.name))
        if art is None or (c.source_path, c.name) not in index.contracts:
            counts["unresolved"] += len(c.functions)
            continue
        fns, cnt = index.resolve(c.source_path, c.name, art.method_identifiers)
        for k in ("unresolved", "no_body"):
            counts[k] += cnt[k]
        by_sel = {f.selector: f for f in c.functions}
        for fn in fns:
            lifted = by_sel.get(fn.selector)
            if lifted is None:
                counts["no_tac"] += 1
                continue
            counts["resolved"] += 1
            record = make_record(
                fn,
                lifted,
                contract=f"{c.source_path}:{c.name}",
                compile_key=key,
                version=result.version,
                setting=fields,
                packages=packages,
                origin=origin,
            )
            add_draft(record, art, lifted, result)
            records.append(record)
    return records, counts


def shard_digest(compile_key: str, contracts: Sequence[LiftedContractRef]) -> str:
    h = hashlib.sha256(f"v{PAIRING_VERSION}.{DRAFT_VERSION}\0{compile_key}".encode())
    for c in contracts:
        h.update(f"\0{c.source_path}:{c.name}".encode())
        for f in c.functions:
            h.update(f"\0{f.selector}\0{f.complexity}\0".encode())
            h.update(hashlib.sha256(f.tac.encode()).digest())
    return h.hexdigest()[:32]


def result_signatures(result: Any) -> list[tuple[str, str]]:
    """(signature, 8-hex selector) of every contract (interfaces and abstract ones included)."""
    return sorted(
        {(sig, sel) for a in result.contracts for sig, sel in a.method_identifiers.items()}
    )


# ------------------------------------------------------------------ compile / lift adapters


def group_lifted(lift_dir: Path) -> dict[str, list[LiftedContractRef]]:
    """compile key → lifted contracts, from ``evmlm.evm.stage.iter_lifted`` (sorted)."""
    from evmlm.evm.stage import iter_lifted

    out: dict[str, list[LiftedContractRef]] = {}
    for key, source_path, name, lifted in iter_lifted(lift_dir):
        functions = (
            lifted.get("functions", [])
            if isinstance(lifted, Mapping)
            else getattr(lifted, "functions", [])
        )
        out.setdefault(key, []).append(
            LiftedContractRef(source_path, name, lifted_functions(functions))
        )
    return {k: sorted(v, key=lambda c: (c.source_path, c.name)) for k, v in sorted(out.items())}


@dataclass(frozen=True)
class PairTask:
    """One compile result to pair: its key, setting name (None = read it from the result),
    lifted contracts and shard path."""

    key: str
    setting: str | None
    contracts: tuple[LiftedContractRef, ...]
    shard: str


def _pair_group(args: tuple[str, list[PairTask], dict[str, str]]) -> list[tuple[str, str | None]]:
    """Pair a group of compile results that share sources and compiler (one per setting):
    the first result is loaded and indexed once and serves the others."""
    compile_dir, tasks, packages = args
    from evmlm.solc.stage import load_result

    out: list[tuple[str, str | None]] = []
    result = index = None
    for t in tasks:
        try:
            if result is None or t.setting is None:
                result = load_result(Path(compile_dir), t.key)
                index = AstIndex(result.sources, result.asts)
            records, counts = pair_result(
                result, t.contracts, packages, index=index, compile_key=t.key, setting=t.setting
            )
            write_shard(Path(t.shard), records, counts, result_signatures(result))
            out.append((t.key, None))
        except Exception as e:  # a batch job records the failure and goes on
            log.warning("pairing compile result %s failed: %s", t.key, e)
            out.append((t.key, f"{type(e).__name__}: {e}"))
    return out


def _index_groups(compile_dir: Path) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """compile key → ((file path, solc version, package, package version), setting name) from
    ``compile/index.jsonl``. The package version is part of the group: two versions of one
    package ship different files at the same path (``@openzeppelin/contracts`` 4.9.6 and 5.7.0
    both have ``finance/VestingWallet.sol``), and a group shares one result's sources and ASTs."""
    p = compile_dir / "index.jsonl"
    out: dict[str, tuple[tuple[str, ...], str | None]] = {}
    if p.is_file():
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    e = json.loads(line)
                    if e.get("key") and e.get("status") == "ok":
                        out[e["key"]] = (
                            (
                                str(e.get("path")),
                                str(e.get("solc")),
                                str(e.get("package")),
                                str(e.get("version")),
                            ),
                            e.get("setting"),
                        )
    return out


def run_pairing(
    compile_dir: Path,
    lifted: Mapping[str, Sequence[LiftedContractRef]],
    packages: Mapping[str, str],
    work: Path,
    *,
    workers: int,
    counts: BuildCounts,
) -> list[Path]:
    """Pair every compile result (resuming from existing shards); return the shard paths."""
    shard_dir = work / "pairs"
    shard_dir.mkdir(parents=True, exist_ok=True)
    groups_of = _index_groups(compile_dir)
    groups: dict[Any, list[PairTask]] = {}
    shards = []
    for key, contracts in lifted.items():
        shard = shard_dir / f"{shard_digest(key, contracts)}.jsonl"
        shards.append(shard)
        if shard.is_file():
            counts.shards_reused += 1
            continue
        group, setting = groups_of.get(key, ((key,), None))
        groups.setdefault(group, []).append(PairTask(key, setting, tuple(contracts), str(shard)))
    counts.compile_results = len(lifted)
    counts.contracts = sum(len(v) for v in lifted.values())
    jobs = [(str(compile_dir), tasks, dict(packages)) for _, tasks in sorted(groups.items())]
    n_tasks = sum(len(t) for _, t, _ in jobs)
    failed = []
    if jobs:
        bar = tqdm(total=n_tasks, desc="pairing", unit="result")
        with contextlib.ExitStack() as stack:
            if workers > 1 and len(jobs) > 1:
                pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
                results: Iterable[list[tuple[str, str | None]]] = (
                    f.result()
                    for f in as_completed([pool.submit(_pair_group, job) for job in jobs])
                )
            else:
                results = map(_pair_group, jobs)
            for done in results:
                for key, err in done:
                    bar.update()
                    if err:
                        failed.append(key)
        bar.close()
    counts.shards_built = n_tasks - len(failed)
    counts.pairing["failed_results"] = len(failed)
    keep = {s.name for s in shards}
    for stale in shard_dir.glob("*.jsonl"):
        if stale.name not in keep:
            stale.unlink()
    return [s for s in shards if s.is_file()]


# ------------------------------------------------------------------ signatures


def build_signature_db(
    signatures: Iterable[tuple[str, str]],
    *,
    artifact_dirs: Sequence[Path] = (),
    files: Sequence[str | Path] = (),
) -> tuple[SignatureDB, SignatureDB, dict[str, int]]:
    """Signature database from (signature, selector) pairs of compile outputs, the ABIs of JSON
    artifacts under ``artifact_dirs`` and 4byte-style ``files``. Returns (the database, its part
    from artifacts and files only — what is known of bytecode from outside this corpus —, source
    counts)."""
    external = SignatureDB()
    counts = {"compile_signatures": 0, "artifact_files": 0, "artifact_abis": 0, "imported": 0}
    for d in artifact_dirs:
        if Path(d).is_dir():
            c = external.add_artifacts(d)
            counts["artifact_files"] += c["files"]
            counts["artifact_abis"] += c["with_abi"]
    for f in files:
        counts["imported"] += external.import_file(f)
    db = external.copy()
    for sig, sel in signatures:
        counts["compile_signatures"] += 1
        db.add(sig, sel)
    counts["selectors"] = len(db)
    counts["collisions"] = len(db.collisions())
    return db, external, counts


def resolve_signatures(records: Iterable[dict[str, Any]], db: SignatureDB) -> dict[str, int]:
    """Set each record's ``signature`` from the database: the true signature when the database
    lists it for the selector, else the unique candidate, else None. Returns counts."""
    counts = {"resolved": 0, "collision_resolved": 0, "unknown": 0}
    for r in records:
        true = r.pop("true_signature", None)
        found = db.lookup(r["selector"])
        if true in found:
            r["signature"] = true
            counts["collision_resolved" if len(found) > 1 else "resolved"] += 1
        elif len(found) == 1:
            r["signature"] = found[0]
            counts["resolved"] += 1
        else:
            r["signature"] = None
            counts["unknown"] += 1
    return counts


# ------------------------------------------------------------------ finish


def finish(
    raw: list[dict[str, Any]],
    out_dir: Path,
    config: DatasetConfig,
    *,
    seed: int,
    build: dict[str, Any],
) -> dict[str, Any]:
    """Filter, dedup, split, leakage check, export and statistics. Returns the statistics.

    Raises :class:`evmlm.dataset.split.LeakageError` (nothing is exported then).
    """
    raw = sorted(raw, key=lambda r: r["id"])
    build["raw_pairs"] = len(raw)
    kept, dropped = apply_filters(
        tqdm(raw, desc="filters", unit="pair", leave=False), config.min_tokens, config.max_tokens
    )
    build["filters"] = dropped
    build["after_filters"] = len(kept)
    d = dedup_mod.dedup(kept, config.near_dup_threshold, seed=seed + 1)
    build["exact_dup_dropped"] = d.exact_dropped
    build["after_exact_dedup"] = len(kept) - d.exact_dropped
    build["distinct_functions_before_near_dup"] = d.n_bodies_before
    build["near_dup_dropped"] = d.near_dup_dropped
    build["near_dup_threshold"] = config.near_dup_threshold
    build["split_sizes"] = assign_splits(d.records, config.split, seed)
    build["leakage_check"] = check_leakage(d.records)
    for r in d.records:  # the multi-task labels (docs/multitask.md)
        r.update(label_fields(r))
        for raw_only in ("internal_member_calls", "reached"):  # the labels' input
            r.pop(raw_only, None)
    export(d.records, out_dir)
    return write_stats(d.records, build, out_dir)


def summary_line(stats: Mapping[str, Any]) -> str:
    b = stats["build"]
    s = stats["splits"]
    return (
        f"{stats['total_pairs']:,} pairs ({s['train']:,}/{s['validation']:,}/{s['test']:,}), "
        f"{stats['distinct_functions']:,} distinct functions; {b['raw_pairs']:,} raw, {b['after_exact_dedup']:,} before near-dup removal; "
        f"signatures {100 * stats['signature_coverage']['share']:.1f}% of public functions"
    )


def raw_from_shards(
    shards: Iterable[Path],
) -> tuple[list[dict[str, Any]], dict[str, int], set[tuple[str, str]]]:
    """All raw records, summed counts and (signature, selector) pairs of the shards."""
    records: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    sigs: set[tuple[str, str]] = set()
    for s in shards:
        rs, cnt, sg = read_shard(s)
        records.extend(rs)
        sigs.update(sg)
        for k, v in cnt.items():
            totals[k] = totals.get(k, 0) + v
    return records, totals, sigs


def _resolve_dir(d: str) -> Path:
    """A relative folder from the config: as given (from the working directory) when it exists,
    else under the project root (:func:`evmlm.corpus.packages.repo_root`, the folder whose
    ``vendor/corpora`` the corpus stage reads too)."""
    p = Path(d)
    if p.is_absolute() or p.is_dir():
        return p
    return repo_root() / p


def read_packages(corpus_dir: Path | None) -> dict[str, str]:
    """Source path → package from the corpus manifest (``corpus/manifest.jsonl``); {} if absent."""
    if corpus_dir is None or not (corpus_dir / "manifest.jsonl").is_file():
        return {}
    out = {}
    with open(corpus_dir / "manifest.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                e = json.loads(line)
                if e.get("path") and e.get("package"):
                    out[e["path"]] = e["package"]
    return out


def build_dataset(
    *,
    compile_dir: Path,
    lift_dir: Path,
    out_dir: Path,
    config: DatasetConfig,
    corpus_dir: Path | None = None,
    workers: int = 2,
    lifted: Mapping[str, Sequence[LiftedContractRef]] | None = None,
    lift_config: Any = None,
) -> dict[str, Any]:
    """Build the dataset into ``out_dir`` (see the module doc); return the statistics dict.

    ``lifted`` (compile key → lifted contracts) defaults to what ``evmlm.evm.stage.iter_lifted``
    yields for ``lift_dir``. Raises LeakageError when the split leaks (nothing exported).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / WORK_DIR
    counts = BuildCounts()
    if lifted is None:
        lifted = group_lifted(lift_dir)
    packages = read_packages(corpus_dir)
    shards = run_pairing(compile_dir, lifted, packages, work, workers=workers, counts=counts)
    raw, pair_counts, sigs = raw_from_shards(shards)
    n_corpus = len(raw)
    wrapper_counts: dict[str, Any] = {}
    if config.wrappers:
        w_shards, w_run = run_wrappers(
            compile_dir, packages, work, config=config, workers=workers, lift_config=lift_config
        )
        w_raw, w_counts, w_sigs = raw_from_shards(w_shards)
        wrapper_counts["candidates"] = w_run["candidates"]
        wrapper_counts["run"] = w_run
        raw.extend(w_raw)
        sigs.update(w_sigs)
        for k, v in w_counts.items():
            wrapper_counts[f"pairing_{k}"] = v
    artifact_dirs = [_resolve_dir(d) for d in config.artifact_dirs]
    db, external, sig_counts = build_signature_db(
        sigs, artifact_dirs=artifact_dirs, files=config.signature_files
    )
    db.save(out_dir / "signatures.tsv")
    atomic.write_json(out_dir / "signature_collisions.json", db.collisions())
    sig_resolution = resolve_signatures(raw, db)
    # how many public selectors a database *without* this corpus's compile outputs knows (the
    # situation of decompiling unseen bytecode): npm artifacts + imported 4byte files only
    public = [r for r in raw if r["visibility"] in ("public", "external")]
    sig_resolution["public_known_without_corpus_abis"] = sum(
        1 for r in public if r["signature"] in external.lookup(r["selector"])
    )
    sig_resolution["public"] = len(public)
    build: dict[str, Any] = {
        "compile_results": counts.compile_results,
        "contracts": counts.contracts,
        "pairing": {**counts.pairing, **pair_counts},
        "pairs_corpus": n_corpus,
        "pairs_wrappers": len(raw) - n_corpus,
        "wrappers": {k: v for k, v in wrapper_counts.items() if k != "run"},
        "signature_db": sig_counts,
        "signature_resolution": sig_resolution,
        "seed": config.seed,
    }
    stats = finish(raw, out_dir, config, seed=config.seed, build=build)
    # what this run reused (not part of the exported, byte-identical files)
    atomic.write_json(
        work / "last_build.json",
        {
            "pair_shards_reused": counts.shards_reused,
            "pair_shards_built": counts.shards_built,
            "wrappers": wrapper_counts.get("run", {}),
        },
    )
    log.info(
        "dataset: %s (shards reused %d, built %d)",
        summary_line(stats),
        counts.shards_reused,
        counts.shards_built,
    )
    return stats
