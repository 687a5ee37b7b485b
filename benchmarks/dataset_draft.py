"""The dataset stage's cost of drafting every pair (the ``draft`` field of the pair record).

    PYTHONPATH=src python benchmarks/dataset_draft.py --run runs/default [--results 200]

Pairs the compile results of a run's compile + lift stages in this process, as the dataset
stage's pairing step does (:func:`evmlm.dataset.build.pair_result`), twice on the same
results: without the draft (the baseline: pairing as before the field) and with it. Prints
seconds for each, the ratio, milliseconds of drafting per pair, the pairs whose draft failed
(``draft`` null) or is a placeholder (``draft_error`` set), and the machine's load. The
wrapper pass drafts its pairs the same way (per pair the same cost); its compile and lift
dominate it and are not repeated here.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a run folder with compile/ and lift/")
    ap.add_argument("--results", type=int, help="a random sample of this many compile results")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    from tqdm import tqdm

    import evmlm.dataset.build as build
    from evmlm.dataset.pairing import AstIndex
    from evmlm.dataset.records import add_draft
    from evmlm.solc.stage import load_result

    lifted = build.group_lifted(a.run / "lift")
    keys = sorted(lifted)
    if a.results and a.results < len(keys):
        keys = sorted(random.Random(a.seed).sample(keys, a.results))
    spent = {"draft": 0.0}

    def timed_draft(record: dict[str, Any], art: Any, fn: Any, result: Any) -> None:
        t0 = time.perf_counter()
        add_draft(record, art, fn, result)
        spent["draft"] += time.perf_counter() - t0

    results = {}
    for k in tqdm(keys, desc="load", unit="result"):
        try:
            results[k] = load_result(a.run / "compile", k)
        except Exception as e:  # noqa: BLE001 -- a result the stage did not keep: skipped
            print(f"  {k}: not loaded ({type(e).__name__})", file=sys.stderr)
    seconds, records = {}, {}
    for label, drafter in (("without draft", lambda *x: None), ("with draft", timed_draft)):
        build.add_draft = drafter  # type: ignore[assignment]
        t0 = time.perf_counter()
        out = []
        for k, res in tqdm(results.items(), desc=label, unit="result"):
            rs, _ = build.pair_result(res, lifted[k], {}, index=AstIndex(res.sources, res.asts))
            out.extend(rs)
        seconds[label] = time.perf_counter() - t0
        records[label] = out
    rows = records["with draft"]
    n = len(rows)
    failed = sum(r.get("draft") is None for r in rows)
    placeholder = sum(r.get("draft") is not None and r.get("draft_error") is not None for r in rows)
    base, new = seconds["without draft"], seconds["with draft"]
    print(
        f"{len(results)} compile results, {n} pairs; load average {os.getloadavg()[0]:.1f} on"
        f" {os.cpu_count()} cores"
    )
    print(f"{'pairing':<16}{'seconds':>10}{'ratio':>8}")
    print(f"{'without draft':<16}{base:>10.1f}{1.0:>8.2f}")
    print(f"{'with draft':<16}{new:>10.1f}{new / max(base, 1e-9):>8.2f}")
    print(
        f"drafting: {spent['draft']:.1f} s in all, {1000 * spent['draft'] / max(n, 1):.1f} ms per"
        f" pair; no draft {failed}, placeholder body {placeholder}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
