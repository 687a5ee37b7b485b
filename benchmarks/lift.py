"""Lifter speed: ms per contract for evmlm's lift_contract vs evmole and Panoramix, same contracts.

    .venv/bin/python benchmarks/lift.py --compile-dir runs/default/compile [--panoramix 20] [--timeout 60]
    .venv/bin/python benchmarks/lift.py --fixtures tests/fixtures/evm

Contracts: every deployable contract of a compile stage folder (the default corpus, all settings),
else the test fixtures. Measured in one run, one process, on the same contracts:

- ``evmlm lift``: :func:`evmlm.evm.lift_contract` (CFG, functions, SSA TAC, all recognisers);
- ``evmole``: ``evmole.contract_info(selectors, arguments, state_mutability)`` — function
  extraction only (no bodies), the fast baseline;
- ``panoramix``: ``evmlm.evaluate.baselines.panoramix.decompile_panoramix`` (its own venv, PUSH0
  patched, a subprocess per contract, wall-clock timeout) on ``--panoramix`` contracts at evenly
  spaced size ranks (it takes seconds per contract); a timeout counts as the timeout.

Prints median and p95 ms per contract and ratios (baseline time / evmlm time on the same
contracts; > 1 means evmlm is faster).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

from evmlm.evm import lift_contract
from evmlm.evm.checks import Contract


def _fixtures(root: Path) -> list[tuple[Contract, dict | None]]:
    import json

    out = []
    for p in sorted(root.glob("*.json")):
        for name, c in json.loads(p.read_text())["contracts"].items():
            out.append((Contract(f"{p.stem}:{name}", c["runtime_bytecode"], c["abi"]), c.get("storage_layout")))
    return out


def _compiled(compile_dir: Path, limit: int | None) -> list[tuple[Contract, dict | None]]:
    from evmlm.solc.stage import iter_results

    out = []
    seen: set[str] = set()
    for r in iter_results(compile_dir):
        for c in r.contracts:
            if c.runtime_bytecode and c.runtime_bytecode not in seen:
                seen.add(c.runtime_bytecode)
                out.append((Contract(f"{c.source_path}:{c.name}@{r.setting.name}", c.runtime_bytecode, c.abi), c.storage_layout))
                if limit and len(out) >= limit:
                    return out
    return out


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compile-dir", type=Path, default=Path("runs/default/compile"))
    ap.add_argument("--fixtures", type=Path, default=None, help="use these fixtures instead of a compile folder")
    ap.add_argument("--limit", type=int, default=None, help="at most this many contracts")
    ap.add_argument("--panoramix", type=int, default=20, help="contracts to run Panoramix on (0: skip)")
    ap.add_argument("--timeout", type=float, default=60.0, help="Panoramix wall-clock limit per contract (s)")
    args = ap.parse_args(argv)

    if args.fixtures is not None:
        contracts = _fixtures(args.fixtures)
    elif (args.compile_dir / "index.jsonl").is_file():
        contracts = _compiled(args.compile_dir, args.limit)
    else:
        print(f"error: {args.compile_dir}/index.jsonl missing; run `evmlm compile` or pass --fixtures tests/fixtures/evm", file=sys.stderr)
        return 2
    contracts = contracts[: args.limit] if args.limit else contracts
    import evmole
    from tqdm import tqdm

    ours: list[float] = []
    mole: list[float] = []
    fails = 0
    gc.disable()
    for c, layout in tqdm(contracts, desc="evmlm+evmole", unit="contract"):
        t0 = time.perf_counter()
        try:
            lift_contract(c.runtime, abi=c.abi, storage_layout=layout, what=c.name)
        except Exception:
            fails += 1
        t1 = time.perf_counter()
        evmole.contract_info(c.runtime, selectors=True, arguments=True, state_mutability=True)
        t2 = time.perf_counter()
        ours.append((t1 - t0) * 1000)
        mole.append((t2 - t1) * 1000)
        gc.collect()
    gc.enable()

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
            picked = sorted({by_size[round(k * (len(by_size) - 1) / max(1, n_p - 1))] for k in range(n_p)})
            for c, _ in tqdm([contracts[i] for i in picked], desc="panoramix", unit="contract"):
                t0 = time.perf_counter()
                try:
                    decompile_panoramix(c.runtime, timeout_s=args.timeout)
                except Exception as e:  # timeouts and crashes count at the time they took
                    timeouts += type(e).__name__ == "PanoramixTimeout"
                pano.append((time.perf_counter() - t0) * 1000)
            pano_note = f"{n_p} contracts, {timeouts} timeouts at {args.timeout:.0f} s"

    n = len(contracts)
    print(f"\n{n} contracts ({fails} lift failures); sizes {min(len(c.runtime) for c, _ in contracts) // 2}-{max(len(c.runtime) for c, _ in contracts) // 2} bytes")
    print(f"{'tool':<28}{'median ms':>12}{'p95 ms':>12}{'mean ms':>12}{'ratio vs evmlm (median)':>26}")
    print(f"{'evmlm lift (full TAC)':<28}{statistics.median(ours):>12.2f}{_pct(ours, 0.95):>12.2f}{statistics.mean(ours):>12.2f}{1.0:>26.2f}")
    print(f"{'evmole (functions only)':<28}{statistics.median(mole):>12.2f}{_pct(mole, 0.95):>12.2f}{statistics.mean(mole):>12.2f}{statistics.median(mole) / statistics.median(ours):>26.3f}")
    if pano:
        same = [ours[i] for i in picked]
        print(f"{'panoramix (decompile)':<28}{statistics.median(pano):>12.2f}{_pct(pano, 0.95):>12.2f}{statistics.mean(pano):>12.2f}{statistics.median(pano) / statistics.median(same):>26.1f}")
        print(f"  panoramix on {len(pano)} contracts at evenly spaced size ranks; evmlm on those: median {statistics.median(same):.2f} ms, mean {statistics.mean(same):.2f} ms")
        print(f"  per-contract speedup (panoramix / evmlm): median {statistics.median(p / o for p, o in zip(pano, same)):.1f}x, min {min(p / o for p, o in zip(pano, same)):.1f}x; total time ratio {sum(pano) / sum(same):.1f}x")
    print(f"panoramix: {pano_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
