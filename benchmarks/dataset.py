"""Dataset-stage speed: pairing and filtering, each against a named baseline, same inputs.

    .venv/bin/python benchmarks/dataset.py --run runs/default [--max-results 300]

Inputs: a run folder whose compile and lift stages are done. Measured in one process, one
after the other, on the same compile results:

* pairing, ``one load per compile result`` (baseline): load the result (gzip JSON with every
  source's AST), index its ASTs, resolve its lifted contracts' selectors;
* pairing, ``one load per (file, compiler) group``: what the stage does — a file compiled
  under several settings has the same ASTs, so one load and one index serve every setting;
* filters, ``parse every record`` (baseline) vs ``parse once per distinct body`` (the stage's
  memoised tree-sitter check).

Prints a table: seconds, items/s and the ratio against the baseline.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from evmlm.dataset.build import _index_groups, group_lifted, pair_result
from evmlm.dataset.filters import check
from evmlm.dataset.pairing import AstIndex
from evmlm.solc.stage import load_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/default"))
    ap.add_argument(
        "--max-results", type=int, default=300, help="compile results to pair (first N by key)"
    )
    args = ap.parse_args()
    compile_dir, lift_dir = args.run / "compile", args.run / "lift"
    lifted = dict(list(group_lifted(lift_dir).items())[: args.max_results])
    groups_of = _index_groups(compile_dir)

    t0 = time.perf_counter()
    base_records = []
    for key, contracts in lifted.items():
        result = load_result(compile_dir, key)
        base_records += pair_result(result, contracts, {})[0]
    t_base = time.perf_counter() - t0

    t0 = time.perf_counter()
    groups: dict[object, list[str]] = defaultdict(list)
    for key in lifted:
        groups[groups_of.get(key, ((key, ""), None))[0]].append(key)
    grouped_records = []
    for keys in groups.values():
        result = load_result(compile_dir, keys[0])
        index = AstIndex(result.sources, result.asts)
        for key in keys:
            setting = groups_of.get(key, (None, None))[1]
            grouped_records += pair_result(
                result, lifted[key], {}, index=index, compile_key=key, setting=setting
            )[0]
    t_group = time.perf_counter() - t0
    assert len(grouped_records) == len(base_records)

    t0 = time.perf_counter()
    for r in base_records:
        check(r, 50, 20000)
    t_fbase = time.perf_counter() - t0
    t0 = time.perf_counter()
    cache: dict[tuple[str, str], bool] = {}
    for r in base_records:
        check(r, 50, 20000, cache)
    t_fcache = time.perf_counter() - t0

    n, m = len(lifted), len(base_records)
    print(
        f"{n} compile results ({len(groups)} file x compiler groups), {m} pairs, {len(cache)} distinct bodies\n"
    )
    print(f"| {'step':<44} | {'seconds':>8} | {'items/s':>9} | {'ratio':>6} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 11}|{'-' * 8}|")
    rows = [
        ("pairing: one load per compile result (baseline)", t_base, n, 1.0),
        ("pairing: one load per (file, compiler) group", t_group, n, t_base / t_group),
        ("filters: parse every record (baseline)", t_fbase, m, 1.0),
        ("filters: parse once per distinct body", t_fcache, m, t_fbase / t_fcache),
    ]
    for name, sec, items, ratio in rows:
        print(f"| {name:<44} | {sec:>8.2f} | {items / sec:>9.1f} | {ratio:>5.2f}x |")


if __name__ == "__main__":
    main()
