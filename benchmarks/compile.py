"""Compile throughput: warm solc-js worker processes vs one process per compile.

Usage: ``.venv/bin/python benchmarks/compile.py [--files 50] [--setting opt200] [--procs 2]``

Takes a deterministic sample of the bundled corpus (every k-th non-excluded file, by path)
and compiles each file as its own job (file + imports, bytecode for its contracts) three ways,
without the compile cache:

* ``one process per compile`` (the baseline): a fresh ``node worker.js`` per job, so the
  solc-js wasm is loaded for every file — what calling ``solcjs`` per file costs;
* ``warm workers``: :class:`evmlm.solc.driver.CompilerPool`, one long-lived process per
  compiler version (what :func:`evmlm.compile_sources` uses);
* ``warm workers + package batches``: the compile stage's mode, files of one package that
  resolve to the same compiler in one solc run (:func:`evmlm.solc.compiler.compile_batch`).

All three run in the same process, one after the other, on the same files; the table gives
files/s and the ratio against the baseline. Runs sequentially (``--procs`` only sizes the
warm pool), so the numbers are per-core throughput.
"""

from __future__ import annotations

import argparse
import time

from evmlm.corpus.imports import ImportResolver
from evmlm.corpus.packages import excluded, npm_packages
from evmlm.solc.compiler import CompileError, JobSpec, choose_version, compile_batch, compile_job
from evmlm.solc.driver import CompilerPool, NodeWorker
from evmlm.solc.settings import get_setting
from evmlm.solc.versions import PragmaError, installed_compilers


def sample(n: int):
    """(package, rel, job, version) for ``n`` files spread evenly over the corpus."""
    packages = npm_packages()
    resolver = ImportResolver(packages)
    files = [
        (p, rel) for p in packages if not p.dependency for rel in p.sol_files() if not excluded(rel)
    ]
    files.sort(key=lambda pr: (pr[0].spec, pr[1]))
    picked = []
    step = max(1, len(files) // (n * 2))
    for p, rel in files[::step]:
        job = resolver.job(p, [rel])
        if job.missing:
            continue
        try:
            version = choose_version(job.sources)
        except PragmaError:
            continue
        picked.append((p, rel, job, version))
    stride = max(1, len(picked) // n)
    return picked[::stride][:n]


def run_cold(files, setting) -> tuple[float, int]:
    compilers = {c.version: c for c in installed_compilers()}
    ok = 0
    t0 = time.perf_counter()
    for _, _, job, version in files:
        from evmlm.solc.compiler import parse_output, standard_input

        w = NodeWorker(compilers[version])
        try:
            raw = w.compile(standard_input(job.sources, setting, job.remappings, job.targets), 600)
        finally:
            w.close()
        try:
            parse_output(
                raw,
                key="-",
                version=version,
                setting=setting,
                sources=job.sources,
                remappings=job.remappings,
                targets=job.targets,
            )
            ok += 1
        except CompileError:
            pass
    return time.perf_counter() - t0, ok


def run_warm(files, setting, procs: int) -> tuple[float, int]:
    pool = CompilerPool(max_procs=procs)
    ok = 0
    t0 = time.perf_counter()
    try:
        for _, _, job, version in files:
            try:
                compile_job(
                    job.sources,
                    job.targets,
                    setting=setting,
                    version=version,
                    remappings=job.remappings,
                    pool=pool,
                    use_cache=False,
                )
                ok += 1
            except CompileError:
                pass
    finally:
        pool.close()
    return time.perf_counter() - t0, ok


def run_batched(files, setting, procs: int) -> tuple[float, int]:
    pool = CompilerPool(max_procs=procs)
    groups: dict[tuple[str, str], list] = {}
    for p, _, job, version in files:
        groups.setdefault((p.spec, version), []).append(
            JobSpec(job.sources, tuple(job.targets), tuple(job.remappings))
        )
    ok = 0
    t0 = time.perf_counter()
    try:
        for (_, version), specs in groups.items():
            ok += sum(
                not isinstance(r, CompileError)
                for r in compile_batch(
                    specs, setting=setting, version=version, pool=pool, use_cache=False
                )
            )
    finally:
        pool.close()
    return time.perf_counter() - t0, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=50)
    ap.add_argument("--setting", default="opt200")
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args()
    setting = get_setting(args.setting)
    files = sample(args.files)
    versions = sorted({v for *_, v in files})
    print(
        f"{len(files)} files from {len({p.spec for p, *_ in files})} packages, {len(versions)} compiler versions, setting {setting.name}"
    )
    rows = []
    t, ok = run_cold(files, setting)
    rows.append(("one process per compile (baseline)", t, ok))
    t, ok = run_warm(files, setting, args.procs)
    rows.append(("warm workers", t, ok))
    t, ok = run_batched(files, setting, args.procs)
    rows.append(("warm workers + package batches", t, ok))
    base = len(files) / rows[0][1]
    print(
        f"{'driver':<36} {'files':>5} {'ok':>4} {'seconds':>8} {'files/s':>8} {'vs baseline':>11}"
    )
    for name, t, ok in rows:
        fps = len(files) / t
        print(f"{name:<36} {len(files):>5} {ok:>4} {t:>8.1f} {fps:>8.2f} {fps / base:>10.2f}x")


if __name__ == "__main__":
    main()
