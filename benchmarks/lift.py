"""Lifter speed and precision: per-contract time and jump resolution for each context policy
(the old one as the named baseline), vs evmole and Panoramix, same contracts, one run.

    .venv/bin/python benchmarks/lift.py --compile-dir runs/default/compile [--panoramix 20] [--timeout 60]
    .venv/bin/python benchmarks/lift.py --artifacts vendor/corpora --panoramix 0
    .venv/bin/python benchmarks/lift.py --fixtures tests/fixtures/evm --dispatcher 2000

Contracts: every deployable contract of a compile stage folder (the default corpus, all
settings), else the npm artifacts (``--artifacts``), else the test fixtures. Measured in one
run, one process, on the same contracts:

- ``evmlm lift`` once per row of :data:`RUNS`: ``before`` is the old context policy
  (``labels``) with the old 60 s budget, ``after`` the default configuration
  (``labels-branch``, 1.5 s budget with partial results); :func:`evmlm.evm.lift_contract`
  (CFG, functions, SSA TAC, all recognisers). Per row: median, p95 and max ms per contract
  (wall clock, and CPU time of the process: less sensitive to the machine's load);
  the share of contracts with any unresolved jump (and the jump sites), of public functions
  with one, of contracts hitting the context bound (and the fallback blocks), partial lifts;
- ``evmole``: ``evmole.contract_info(selectors, arguments, state_mutability)`` — function
  extraction only (no bodies), the fast baseline;
- ``panoramix``: ``evmlm.evaluate.baselines.panoramix.decompile_panoramix`` (its own venv, PUSH0
  patched, a subprocess per contract, wall-clock timeout) on ``--panoramix`` contracts at evenly
  spaced size ranks (it takes seconds per contract); a timeout counts as the timeout;
- ``--dispatcher N``: a synthetic linear dispatcher of N selectors
  (:func:`evmlm.evm.checks.synthetic_dispatcher`; 20,000 give 280 KB) lifted without ABI per row.

Prints the tables and ratios (baseline time / evmlm time on the same contracts; > 1 means
evmlm is faster). Times are wall-clock and depend on the machine's load: say it when quoting.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from evmlm.config import LiftConfig
from evmlm.evm import lift_contract
from evmlm.evm.checks import Contract, iter_artifacts, synthetic_dispatcher

#: (row name, configuration): the old policy first (the named baseline), then the default.
RUNS = (
    ("before: labels, 60 s", LiftConfig(context_policy="labels", max_seconds=60.0)),
    (f"after: labels-branch, {LiftConfig().max_seconds:g} s", LiftConfig()),
)


def _fixtures(root: Path) -> list[tuple[Contract, dict | None]]:
    import json

    out = []
    for p in sorted(root.glob("*.json")):
        for name, c in json.loads(p.read_text())["contracts"].items():
            out.append(
                (
                    Contract(f"{p.stem}:{name}", c["runtime_bytecode"], c["abi"]),
                    c.get("storage_layout"),
                )
            )
    return out


def _compiled(compile_dir: Path, limit: int | None) -> list[tuple[Contract, dict | None]]:
    from evmlm.solc.stage import iter_results

    out = []
    seen: set[str] = set()
    for r in iter_results(compile_dir):
        for c in r.contracts:
            if c.runtime_bytecode and c.runtime_bytecode not in seen:
                seen.add(c.runtime_bytecode)
                out.append(
                    (
                        Contract(
                            f"{c.source_path}:{c.name}@{r.setting.name}", c.runtime_bytecode, c.abi
                        ),
                        c.storage_layout,
                    )
                )
                if limit and len(out) >= limit:
                    return out
    return out


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compile-dir", type=Path, default=Path("runs/default/compile"))
    ap.add_argument(
        "--fixtures", type=Path, default=None, help="use these fixtures instead of a compile folder"
    )
    ap.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        help="use the npm artifacts under this folder (vendor/corpora)",
    )
    ap.add_argument(
        "--dispatcher",
        type=int,
        default=20000,
        help="selectors of the synthetic dispatcher (0: skip)",
    )
    ap.add_argument("--limit", type=int, default=None, help="at most this many contracts")
    ap.add_argument(
        "--panoramix", type=int, default=20, help="contracts to run Panoramix on (0: skip)"
    )
    ap.add_argument(
        "--timeout", type=float, default=60.0, help="Panoramix wall-clock limit per contract (s)"
    )
    args = ap.parse_args(argv)

    if args.fixtures is not None:
        contracts = _fixtures(args.fixtures)
    elif args.artifacts is not None:
        contracts = [(c, None) for c in iter_artifacts(args.artifacts, limit=args.limit)]
    elif (args.compile_dir / "index.jsonl").is_file():
        contracts = _compiled(args.compile_dir, args.limit)
    else:
        print(
            f"error: {args.compile_dir}/index.jsonl missing; run `evmlm compile` or pass --fixtures tests/fixtures/evm",
            file=sys.stderr,
        )
        return 2
    contracts = contracts[: args.limit] if args.limit else contracts
    import evmole
    from tqdm import tqdm

    rows: dict[str, list[dict]] = {name: [] for name, _ in RUNS}
    mole: list[float] = []
    gc.disable()
    for c, layout in tqdm(contracts, desc="evmlm+evmole", unit="contract"):
        for name, cfg in RUNS:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                lc = lift_contract(
                    c.runtime, abi=c.abi, storage_layout=layout, config=cfg, what=c.name
                )
                pub = [f for f in lc.functions if f.kind == "public"]
                r = {
                    "u": lc.unresolved_jumps,
                    "fb": lc.context_fallbacks,
                    "partial": lc.partial is not None,
                    "pub": len(pub),
                    "pub_u": sum(1 for f in pub if f.unresolved_jumps),
                }
            except Exception as e:  # recorded, the run goes on
                r = {"error": f"{type(e).__name__}: {e}"}
            r["ms"] = (time.perf_counter() - t0) * 1000
            r["cpu_ms"] = (time.process_time() - c0) * 1000
            r["name"] = c.name
            rows[name].append(r)
        t1 = time.perf_counter()
        evmole.contract_info(c.runtime, selectors=True, arguments=True, state_mutability=True)
        mole.append((time.perf_counter() - t1) * 1000)
        gc.collect()
    gc.enable()
    ours = [r["ms"] for r in rows[RUNS[-1][0]]]
    fails = sum("error" in r for r in rows[RUNS[-1][0]])

    pano: list[float] = []
    picked: list[int] = []
    pano_note = "not run"
    n_p = min(args.panoramix, len(contracts))
    if n_p:
        try:
            from evmlm.evaluate.baselines.panoramix import decompile_panoramix, is_available
        except ImportError:
            is_available = None  # type: ignore[assignment]
        if is_available is None or not is_available():
            pano_note = "not run (Panoramix not installed: scripts/setup_panoramix.sh)"
        else:
            timeouts = 0
            # contracts at evenly spaced size ranks (small to large), not the first few
            by_size = sorted(range(len(contracts)), key=lambda i: len(contracts[i][0].runtime))
            picked = sorted(
                {by_size[round(k * (len(by_size) - 1) / max(1, n_p - 1))] for k in range(n_p)}
            )
            for c, _ in tqdm([contracts[i] for i in picked], desc="panoramix", unit="contract"):
                t0 = time.perf_counter()
                try:
                    decompile_panoramix(c.runtime, timeout_s=args.timeout)
                except Exception as e:  # timeouts and crashes count at the time they took
                    timeouts += type(e).__name__ == "PanoramixTimeout"
                pano.append((time.perf_counter() - t0) * 1000)
            pano_note = f"{n_p} contracts, {timeouts} timeouts at {args.timeout:.0f} s"

    n = len(contracts)
    print(
        f"\n{n} contracts ({fails} lift failures); sizes {min(len(c.runtime) for c, _ in contracts) // 2}-{max(len(c.runtime) for c, _ in contracts) // 2} bytes"
    )
    print(
        f"\n{'policy (budget)':<28}{'median ms':>11}{'p95 ms':>10}{'max ms':>10}{'unresolved':>12}{'sites':>7}{'pub fns':>9}{'ctx bound':>11}{'fallbacks':>10}{'partial':>9}{'> 2 s':>7}"
    )
    for name, _ in RUNS:
        rs = rows[name]
        ok = [r for r in rs if "error" not in r]
        ms = [r["ms"] for r in rs]
        n_ok = max(1, len(ok))
        n_pub = max(1, sum(r["pub"] for r in ok))
        print(
            f"{name:<28}{statistics.median(ms):>11.2f}{_pct(ms, 0.95):>10.1f}{max(ms):>10.1f}"
            f"{sum(r['u'] > 0 for r in ok) / n_ok:>12.2%}{sum(r['u'] for r in ok):>7}{sum(r['pub_u'] for r in ok) / n_pub:>9.2%}"
            f"{sum(r['fb'] > 0 for r in ok) / n_ok:>11.2%}{sum(r['fb'] for r in ok):>10}{sum(r['partial'] for r in ok):>9}{sum(m > 2000 for m in ms):>7}"
        )
    print(f"\n{'CPU time (process)':<28}{'median ms':>11}{'p95 ms':>10}{'max ms':>10}{'> 2 s':>7}")
    for name, _ in RUNS:
        cpu = [r["cpu_ms"] for r in rows[name]]
        print(
            f"{name:<28}{statistics.median(cpu):>11.2f}{_pct(cpu, 0.95):>10.1f}{max(cpu):>10.1f}{sum(m > 2000 for m in cpu):>7}"
        )
    slow = sorted(rows[RUNS[-1][0]], key=lambda r: -r["ms"])[:5]
    print("slowest (after): " + "; ".join(f"{r['ms'] / 1000:.2f} s {r['name']}" for r in slow))
    left = [r["name"] for r in rows[RUNS[-1][0]] if r.get("u")]
    print(
        f"contracts with unresolved jumps (after): {len(left)}"
        + (": " + ", ".join(left[:20]) if left else "")
    )
    print(
        f"\n{'tool':<28}{'median ms':>12}{'p95 ms':>12}{'mean ms':>12}{'ratio vs evmlm (median)':>26}"
    )
    print(
        f"{'evmlm lift (full TAC)':<28}{statistics.median(ours):>12.2f}{_pct(ours, 0.95):>12.2f}{statistics.mean(ours):>12.2f}{1.0:>26.2f}"
    )
    print(
        f"{'evmole (functions only)':<28}{statistics.median(mole):>12.2f}{_pct(mole, 0.95):>12.2f}{statistics.mean(mole):>12.2f}{statistics.median(mole) / statistics.median(ours):>26.3f}"
    )
    if pano:
        same = [ours[i] for i in picked]
        print(
            f"{'panoramix (decompile)':<28}{statistics.median(pano):>12.2f}{_pct(pano, 0.95):>12.2f}{statistics.mean(pano):>12.2f}{statistics.median(pano) / statistics.median(same):>26.1f}"
        )
        print(
            f"  panoramix on {len(pano)} contracts at evenly spaced size ranks; evmlm on those: median {statistics.median(same):.2f} ms, mean {statistics.mean(same):.2f} ms"
        )
        print(
            f"  per-contract speedup (panoramix / evmlm): median {statistics.median(p / o for p, o in zip(pano, same)):.1f}x, min {min(p / o for p, o in zip(pano, same)):.1f}x; total time ratio {sum(pano) / sum(same):.1f}x"
        )
    if args.dispatcher:
        code, sels = synthetic_dispatcher(args.dispatcher)
        print(
            f"\nsynthetic linear dispatcher: {len(sels)} selectors, {len(code) // 1000} KB, no ABI"
        )
        for name, cfg in RUNS:
            for budget in ({cfg.max_seconds}, {cfg.max_seconds, 600.0}):
                t0, c0 = time.perf_counter(), time.process_time()
                lc = lift_contract(code, config=replace(cfg, max_seconds=max(budget)))
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                found = len(set(lc.selectors) & {f"{s:#010x}" for s in sels})
                print(
                    f"  {name:<28} budget {max(budget):>5g} s: {wall:>6.2f} s wall, {cpu:>6.2f} s CPU, "
                    f"selectors {found}/{len(sels)}, partial: {lc.partial or 'no'}"
                )
    print(f"panoramix: {pano_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
