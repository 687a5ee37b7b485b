"""The compile stage: every corpus file, under every configured setting, as its own job.

A job is one corpus file plus everything it imports; only the file's own contracts get
bytecode (``outputSelection``), ASTs come for every source. Jobs of one package that resolve to
the same compiler run together in one solc call (shared imports analysed once); when that call
fails, the files behind the error are compiled alone, so a failure stays with its file. Batches
are ordered by compiler version so warm worker processes are reused, run on
``compile.workers`` threads, and every job is cached by content (a rerun compiles nothing).

Outputs under ``compile/``: ``index.jsonl`` (one line per file x setting: ``path``,
``package``, ``version``, ``setting``, ``status`` ok | failed | skipped, ``key``, ``solc``,
``contracts``, ``reason``, ``message``), ``results/<key>.json.gz`` (one :class:`CompileResult`
each, gzip JSON) and ``summary.json``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import stat
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from evmlm import atomic
from evmlm.config import CompileConfig
from evmlm.corpus.imports import OUTSIDE, ImportResolver, Job, outside_message
from evmlm.corpus.manifest import read_manifest, read_packages
from evmlm.corpus.packages import Package
from evmlm.errors import EvmlmError
from evmlm.solc.compiler import (
    CompileError,
    CompileResult,
    JobSpec,
    UnsupportedSettingError,
    allowed_versions,
    cache_path,
    choose_version,
    compile_batch,
)
from evmlm.solc.driver import CompilerPool
from evmlm.solc.settings import CompileSetting, get_setting
from evmlm.solc.versions import PragmaError, compatible_pragmas, spread_versions

log = logging.getLogger(__name__)

INDEX = "index.jsonl"
RESULTS = "results"


def _result_path(compile_dir: Path, key: str) -> Path:
    return compile_dir / RESULTS / f"{key}.json.gz"


def load_result(compile_dir: str | Path, key: str) -> CompileResult:
    """One stored result by its key. Raises EvmlmError when it is not there."""
    p = _result_path(Path(compile_dir), key)
    if not p.is_file():
        raise EvmlmError(f"{p}: no compile result with key {key}; run `evmlm compile` first")
    with gzip.open(p, "rt", encoding="utf-8") as f:
        rec = json.load(f)
    return CompileResult.from_json(rec["result"] if "result" in rec else rec)


def read_index(compile_dir: str | Path) -> list[dict[str, Any]]:
    p = Path(compile_dir) / INDEX
    if not p.is_file():
        raise EvmlmError(f"{p}: no compile index; run `evmlm compile` first")
    with open(p, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def iter_results(compile_dir: str | Path) -> Iterator[CompileResult]:
    """Every successful compile of the stage, in index order (file, then setting)."""
    seen: set[str] = set()
    for e in read_index(compile_dir):
        if e["status"] == "ok" and e["key"] not in seen:
            seen.add(e["key"])
            yield load_result(compile_dir, e["key"])


def _store(compile_dir: Path, key: str) -> None:
    """Place the cached result under results/: a hard link when the cache file has the mode a
    new file gets here (umask), else a copy (a cache entry written 0600 by an older version)."""
    dst = _result_path(compile_dir, key)
    if dst.is_file():
        return
    src = cache_path(key)
    with atomic.atomic_path(dst) as tmp:
        if stat.S_IMODE(src.stat().st_mode) == stat.S_IMODE(tmp.stat().st_mode):
            tmp.unlink()
            try:
                os.link(src, tmp)
                return
            except OSError:
                pass
        shutil.copyfile(src, tmp)


def _prune_results(compile_dir: Path, rows: list[dict[str, Any]]) -> int:
    """Delete every file under results/ that no ``ok`` index row names (left by an interrupted
    or differently configured earlier run; they would count in the stage's output digest).
    Returns how many were deleted."""
    keep = {_result_path(compile_dir, r["key"]).name for r in rows if r["status"] == "ok"}
    gone = 0
    for p in (compile_dir / RESULTS).iterdir() if (compile_dir / RESULTS).is_dir() else ():
        if p.name not in keep and (p.is_file() or p.is_symlink()):
            p.unlink()
            gone += 1
    return gone


def _plan(
    entries: list[dict[str, Any]], packages: list[Package]
) -> list[tuple[dict[str, Any], Job, str | None, str | None]]:
    """(entry, job, resolved version or None, version error) per manifest entry."""
    resolver = ImportResolver(packages, compatible=compatible_pragmas)
    by_spec = {(p.name, p.version): p for p in packages}
    plan = []
    for e in entries:
        pkg = by_spec.get((e["package"], e["version"]))
        if pkg is None:
            plan.append(
                (
                    e,
                    Job(
                        targets=[e["path"]],
                        missing=[
                            f"{e['path']}: package {e['package']}@{e['version']} not recorded"
                        ],
                    ),
                    None,
                    "package not recorded",
                )
            )
            continue
        job = resolver.job(pkg, [e["rel"]])
        try:
            version, err = choose_version(job.sources), None
        except PragmaError as ex:
            version, err = None, str(ex)
        plan.append((e, job, version, err))
    return plan


# solc rejections that an older compiler allowed by the same pragmas often accepts (stricter
# override / shadowing / conversion rules arrive in later 0.8.x releases).
RETRY_OLDER = frozenset({"TypeError", "DeclarationError", "SyntaxError", "ParserError"})
FALLBACK_ROUNDS = 2


def _minor(v: str) -> str:
    return v.rsplit(".", 1)[0]


def _fallback_batches(
    plan: list,
    rows: dict[tuple[int, str], dict[str, Any]],
    settings: list[CompileSetting],
    tried: dict[tuple[int, str], set[str]],
) -> list[tuple[str, CompileSetting, list[int]]]:
    """Batches that retry files solc rejected with another installed compiler their pragmas allow:
    the newest of an older minor series not tried yet (0.8.x fails -> 0.7.6), else the oldest allowed."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for (i, sname), row in rows.items():
        if row["status"] != "failed" or row.get("reason") not in RETRY_OLDER:
            continue
        e, job, version, _ = plan[i]
        done = tried.setdefault((i, sname), {version} if version else set())
        cands = [v for v in allowed_versions(job.sources) if v not in done]
        if not cands:
            continue
        other_series = [v for v in cands if _minor(v) not in {_minor(d) for d in done}]
        pick = other_series[0] if other_series else cands[-1]
        done.add(pick)
        groups.setdefault((_group_label(e), pick, sname), []).append(i)
    return _chunked(groups, settings)


def _group_label(entry: dict[str, Any]) -> str:
    """The files compiled together: one package version (and corpus source)."""
    return f"{entry['package']}@{entry['version']}\0{entry.get('source', '')}"


def _chunked(
    groups: dict[tuple[str, str, str], list[int]], settings: list[CompileSetting]
) -> list[tuple[str, CompileSetting, list[int]]]:
    """``(group label, solc version, setting name) -> files`` as batches of up to
    :data:`BATCH_FILES` files: (version, setting, files), in key order."""
    by_name = {s.name: s for s in settings}
    return [
        (v, by_name[sname], sorted(members)[k : k + BATCH_FILES])
        for (_, v, sname), members in sorted(groups.items())
        for k in range(0, len(members), BATCH_FILES)
    ]


BATCH_FILES = 40  # files of one package compiled in one solc run (a failure falls back to per-file)


def _extra_version_batches(
    plan: list,
    rows: dict[tuple[int, str], dict[str, Any]],
    settings: list[CompileSetting],
    versions: int,
) -> list[tuple[str, CompileSetting, list[int]]]:
    """Batches that compile each file again under the other compilers
    :func:`evmlm.solc.versions.spread_versions` picks from those its pragmas (and its imports')
    allow, ``versions`` in all counting the one its row already used. Files that failed for a
    reason other than a solc rejection (missing import, no compiler) get none."""
    if versions <= 1:
        return []
    groups: dict[tuple[str, str, str], list[int]] = {}
    for (i, sname), row in rows.items():
        e, job, version, verr = plan[i]
        if (
            verr is not None
            or job.missing
            or job.outside
            or version is None
            or row["status"] == "skipped"
        ):
            continue
        for v in spread_versions(allowed_versions(job.sources), versions):
            if v != row["solc"]:
                groups.setdefault((_group_label(e), v, sname), []).append(i)
    return _chunked(groups, settings)


def compile_corpus(
    entries: list[dict[str, Any]],
    packages: list[Package],
    cfg: CompileConfig,
    out_dir: Path,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Compile every entry under every setting into ``out_dir``; returns the summary dict.

    Files of one package that resolve to the same compiler are compiled together in batches of
    up to :data:`BATCH_FILES` (shared imports are analysed once; see
    :func:`evmlm.solc.compiler.compile_batch`), on ``compile.workers`` threads. A file the
    newest allowed compiler rejects (:data:`RETRY_OLDER`) is tried again (up to
    :data:`FALLBACK_ROUNDS` times) with another installed compiler its pragmas allow, first the
    newest of an older minor series, then the oldest; its index row then says ``fallback: true``.
    With ``compile.versions`` > 1 each file is also compiled with more compilers its pragmas
    allow (:func:`_extra_version_batches`); those index rows say ``extra_version: true`` and
    follow the file's row of the same setting.
    """
    settings = [get_setting(s) for s in cfg.settings]
    plan = _plan(entries, packages)
    pool = CompilerPool(max_procs=cfg.workers + 2)
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    extra_rows: dict[
        tuple[int, str, str], dict[str, Any]
    ] = {}  # (file, setting, solc) with compile.versions > 1

    def base(i: int, setting: CompileSetting) -> dict[str, Any]:
        e, _, version, _ = plan[i]
        return {
            "path": e["path"],
            "package": e["package"],
            "version": e["version"],
            "setting": setting.name,
            "solc": version,
        }

    def make_row(
        i: int, setting: CompileSetting, r: CompileResult | CompileError
    ) -> dict[str, Any]:
        row = base(i, setting)
        if isinstance(r, CompileResult):
            _store(out_dir, r.key)
            row |= {
                "status": "ok",
                "key": r.key,
                "contracts": [c.name for c in r.contracts],
                "deployable": [c.name for c in r.contracts if c.runtime_bytecode],
            }
        elif isinstance(r, UnsupportedSettingError):
            row |= {"status": "skipped", "key": None, "reason": r.reason, "message": str(r)}
        else:
            row |= {"status": "failed", "key": r.key, "reason": r.reason, "message": str(r)[:500]}
        return row

    def record(i: int, setting: CompileSetting, r: CompileResult | CompileError) -> None:
        rows[(i, setting.name)] = make_row(i, setting, r)

    groups: dict[
        tuple[str, str], list[int]
    ] = {}  # (group label, solc version) -> files; batches keep a version's runs together
    for i, (e, job, version, verr) in enumerate(plan):
        for setting in settings:
            if job.outside:
                record(i, setting, CompileError(outside_message(job.outside[0]), reason=OUTSIDE))
            elif verr is not None:
                record(
                    i,
                    setting,
                    CompileError(
                        f"{e['path']}: {verr}",
                        reason="no compiler" if "no installed" in verr else "conflicting pragmas",
                    ),
                )
            elif job.missing:
                miss = job.missing[0]
                record(
                    i,
                    setting,
                    CompileError(
                        f"{miss.split(': ', 1)[0]}: import {miss.split(': ', 1)[-1]!r} not found in the corpus packages",
                        reason="missing import",
                    ),
                )
        if verr is None and not job.missing and not job.outside:
            groups.setdefault((_group_label(e), version or ""), []).append(i)
    batches = [
        (key[1], setting, members[k : k + BATCH_FILES])
        for key, members in sorted(groups.items(), key=lambda kv: kv[0][1])
        for setting in settings
        for k in range(0, len(members), BATCH_FILES)
    ]

    def run(
        b: tuple[str, CompileSetting, list[int]],
    ) -> tuple[tuple[str, CompileSetting, list[int]], list[CompileResult | CompileError]]:
        version, setting, members = b
        specs = [
            JobSpec(plan[i][1].sources, tuple(plan[i][1].targets), tuple(plan[i][1].remappings))
            for i in members
        ]
        return b, compile_batch(
            specs, setting=setting, version=version, pool=pool, timeout_s=cfg.timeout_s
        )

    try:
        with (
            ThreadPoolExecutor(max_workers=cfg.workers) as ex,
            tqdm(
                total=len(plan) * len(settings),
                initial=len(rows),
                desc="compile",
                unit="file",
                disable=not progress,
            ) as bar,
        ):
            for (version, setting, members), results in ex.map(run, batches):
                for i, r in zip(members, results):
                    record(i, setting, r)
                bar.update(len(members))
            tried: dict[tuple[int, str], set[str]] = {}
            for _ in range(FALLBACK_ROUNDS):
                retries = _fallback_batches(plan, rows, settings, tried)
                if not retries:
                    break
                bar.total += sum(len(m) for _, _, m in retries)
                bar.set_description("compile (other solc)")
                for (version, setting, members), results in ex.map(run, retries):
                    for i, r in zip(members, results):
                        if isinstance(r, CompileResult):
                            record(i, setting, r)
                            rows[(i, setting.name)]["solc"] = version
                            rows[(i, setting.name)]["fallback"] = True
                    bar.update(len(members))
            extra = _extra_version_batches(plan, rows, settings, cfg.versions)
            if extra:
                bar.total += sum(len(m) for _, _, m in extra)
                bar.set_description("compile (more solc versions)")
                for (version, setting, members), results in ex.map(run, extra):
                    for i, r in zip(members, results):
                        extra_rows[(i, setting.name, version)] = make_row(i, setting, r) | {
                            "solc": version,
                            "extra_version": True,
                        }
                    bar.update(len(members))
    finally:
        pool.close()
    extras_of: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for (i, sname, _), row in sorted(extra_rows.items()):
        extras_of.setdefault((i, sname), []).append(row)
    ordered = [
        row
        for i in range(len(plan))
        for s in settings
        for row in [rows[(i, s.name)], *extras_of.get((i, s.name), [])]
    ]
    atomic.write_text(
        out_dir / INDEX, "".join(json.dumps(r, sort_keys=True) + "\n" for r in ordered)
    )
    pruned = _prune_results(out_dir, ordered)
    if pruned:
        log.info("compile: removed %d results no index row names", pruned)
    ok_files = {
        r["path"] + "\0" + r["package"] + r["version"] for r in ordered if r["status"] == "ok"
    }
    reasons = Counter(r["reason"] for r in ordered if r["status"] == "failed")
    files_failed_all = Counter()
    by_file: dict[str, list[dict[str, Any]]] = {}
    for r in ordered:
        by_file.setdefault(r["path"] + "\0" + r["package"] + r["version"], []).append(r)
    for f, rs in by_file.items():
        if f not in ok_files:
            failed = [r for r in rs if r["status"] == "failed"]
            files_failed_all[failed[0]["reason"] if failed else "skipped"] += 1
    by_package: dict[str, list[int]] = {}
    for f, rs in by_file.items():
        pkg = f"{rs[0]['package'] or '(local)'}@{rs[0]['version']}"
        counts = by_package.setdefault(pkg, [0, 0])
        counts[0] += f in ok_files
        counts[1] += 1
    contracts = sum(len(r.get("contracts") or []) for r in ordered if r["status"] == "ok")
    deployable = sum(len(r.get("deployable") or []) for r in ordered if r["status"] == "ok")
    n = len(plan)
    share = len(ok_files) / n if n else 0.0
    summary = {
        "files": n,
        "jobs": len(ordered),
        "files_ok": len(ok_files),
        "share_ok": round(share, 4),
        "jobs_ok": sum(r["status"] == "ok" for r in ordered),
        "jobs_failed": sum(r["status"] == "failed" for r in ordered),
        "jobs_skipped": sum(r["status"] == "skipped" for r in ordered),
        "contracts": contracts,
        "deployable": deployable,
        "failures_by_reason": dict(reasons.most_common()),
        "files_failed_by_reason": dict(files_failed_all.most_common()),
        "processes_started": pool.started,
        "settings": [s.name for s in settings],
        "versions": cfg.versions,
        "extra_version_jobs_ok": sum(r["status"] == "ok" for r in extra_rows.values()),
        "files_ok_by_package": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_package.items())},
    }
    reasons_txt = ", ".join(f"{k} {v}" for k, v in files_failed_all.most_common(5)) or "none"
    summary["line"] = (
        f"{len(ok_files)}/{n} files compiled under >=1 setting ({100 * share:.2f}%); {summary['jobs_ok']} jobs ok, "
        f"{summary['jobs_failed']} failed, {summary['jobs_skipped']} skipped; {contracts} contracts ({deployable} with bytecode); "
        f"failed files by reason: {reasons_txt}"
    )
    atomic.write_json(out_dir / "summary.json", summary)
    return summary


def run_stage(ctx: Any) -> dict[str, Any]:
    """Pipeline entry: compile the corpus manifest of this run."""
    corpus_dir = ctx.dir_of("corpus")
    entries = read_manifest(corpus_dir)
    packages = read_packages(corpus_dir)
    summary = compile_corpus(entries, packages, ctx.config.compile, Path(ctx.stage_dir))
    log.info("compile: %s", summary["line"])
    return summary
