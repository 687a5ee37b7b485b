"""Measure the structural decompiler by execution: splice each draft into its original source,
recompile with the original solc version and setting, deploy both and compare behaviour.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/structural.py --run runs/default -n 300 [--split test]
    PYTHONPATH=src python benchmarks/structural.py --files tests/fixtures/evaluate/Counter.sol

Prints per compile setting: functions, recompiles %, behaves the same % (of the functions
whose original behaviour could be determined, and of all), Solidity share of statements
(statements outside ``assembly { }``), state-machine fallbacks; then the first failure
reasons. ``--out`` writes one JSON line per function.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

from evmlm.decompile.verify import compare_deployed as compare_behaviour
from evmlm.decompile.verify import deployed_runtime
from evmlm.evaluate.behaviour import deployed_contract, recompile
from evmlm.evaluate.runner import EVAL_LIFT
from evmlm.evm import lift_contract
from evmlm.structural import (
    draft_function,
    header_specifiers,
    parameter_names,
    splice_scope,
)


def defining_contract(result: Any, source_path: str, start: int) -> str | None:
    """``path:Name`` of the contract whose AST range holds byte ``start`` of ``source_path``."""
    ast = result.asts.get(source_path)
    if not ast:
        return None
    for node in ast.get("nodes", []):
        if node.get("nodeType") == "ContractDefinition":
            s, ln, _ = (int(x) for x in node["src"].split(":"))
            if s <= start < s + ln:
                return f"{source_path}:{node['name']}"
    return None


def check(
    result: Any,
    source_path: str,
    contract: str,
    start: int,
    length: int,
    selector: str,
    lift_cache: dict | None = None,
    getter: bool = False,
    visibility: str | None = None,
) -> dict[str, Any]:
    """Draft one function and check it by recompiling and executing (only draft it when
    :data:`DRAFT_ONLY` is set: ``--draft-only``). Returns a row."""
    row: dict[str, Any] = {
        "selector": selector,
        "contract": contract,
        "setting": str(result.setting.name if hasattr(result.setting, "name") else result.setting),
        "version": result.version,
    }
    if ":" not in contract:
        contract = f"{source_path}:{contract}"
    art = deployed_contract(result, contract, selector)
    key = (result.key, art.source_path, art.name)
    lc, runtime = (lift_cache or {}).get(key, (None, None))
    if lc is None:
        runtime = (
            deployed_runtime(art.creation_bytecode, art.abi)
            if "__$" not in art.creation_bytecode
            else None
        ) or art.runtime_bytecode
        lc = lift_contract(
            runtime, abi=art.abi, storage_layout=art.storage_layout, config=EVAL_LIFT
        )
        if lift_cache is not None:
            lift_cache[key] = (lc, runtime)
    fn = lc.function(selector)
    if fn is None:
        row.update(stage="lift", error="selector not lifted")
        return row
    original = result.sources[source_path].encode()[start : start + length].decode()
    t0 = time.monotonic()
    d = draft_function(
        lc,
        fn,
        abi=art.abi,
        storage_layout=art.storage_layout,
        solc_version=result.version,
        specifiers=header_specifiers(original, result.version),
        scope=splice_scope(result.asts, source_path, start),
        runtime_bytecode=runtime,
        getter=getter,
        visibility=visibility,
        param_names=parameter_names(original),
    )
    row.update(
        seconds=round(time.monotonic() - t0, 4),
        n_statements=d.n_statements,
        n_asm=d.n_assembly_statements,
        asm_ops=assembly_census(d.text),
        structured=d.structured,
        draft_error=d.error,
    )
    if DRAFT_ONLY:
        row["text"] = d.text
        return row
    rc = recompile(result, source_path, contract, start, length, d.text, selector=selector)
    row["recompiles"] = rc.ok
    if not rc.ok:
        row.update(stage="recompile", error=rc.error, text=d.text)
        return row
    b = compare_behaviour(
        rc.original_creation_bytecode or "", rc.creation_bytecode or "", rc.abi, selector
    )
    row.update(same=b.same, n_calls=b.n_calls, n_different=b.n_different, error=b.first_difference)
    if b.same is False:
        row["text"] = d.text
    return row


DRAFT_ONLY = False  # --draft-only: the census of the drafts, no recompile / execution
_YUL_HEAD = re.compile(r"(?:let [\w, ]+ := |[\w, ]+ := )?(\w+)")


def assembly_census(text: str) -> dict[str, int]:
    """Statements inside the draft's ``assembly { }`` blocks by their outermost operation
    (``mstore``, ``if``, ``sstore``, a helper such as ``__panic``; ``let v := mload(…)``
    counts as ``mload``); the helpers' own definitions are not statements."""
    out: collections.Counter[str] = collections.Counter()
    pad = None  # indentation of the statements of the open assembly block
    for line in text.splitlines():
        ind, head = len(line) - len(line.lstrip()), line.strip()
        if pad is None:
            if head == "assembly {":
                pad = ind + 4
            continue
        if ind < pad and head == "}":
            pad = None
        elif ind == pad and head and not head.startswith(("function ", "}")):
            m = _YUL_HEAD.match(head)
            out[m.group(1) if m else head[:10]] += 1
    return dict(out)


def summarise(rows: list[dict[str, Any]]) -> str:
    by: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        by[r.get("setting", "?")].append(r)
    by["ALL"] = rows
    lines = [
        f"{'setting':10} {'n':>5} {'recompiles':>10} {'same':>7} {'same/det':>8} {'undet':>5} {'sol share':>9} {'unstruct':>8}"
    ]
    for s, rs in sorted(by.items(), key=lambda kv: kv[0] == "ALL"):
        n = len(rs)
        rec = sum(1 for r in rs if r.get("recompiles"))
        same = sum(1 for r in rs if r.get("same") is True)
        undet = sum(1 for r in rs if r.get("recompiles") and r.get("same") is None)
        st = sum(r.get("n_statements", 0) for r in rs)
        asm = sum(r.get("n_asm", 0) for r in rs)
        uns = sum(1 for r in rs if r.get("structured") is False)
        det = n - undet
        lines.append(
            f"{s:10} {n:5d} {100 * rec / max(n, 1):9.1f}% {100 * same / max(n, 1):6.1f}% {100 * same / max(det, 1):7.1f}% {undet:5d} {100 * (1 - asm / max(st, 1)):8.1f}% {uns:8d}"
        )
    return "\n".join(lines)


def _files_rows(paths: list[str], settings: list[str]) -> list[dict[str, Any]]:
    from evmlm.solc import compile_sources

    rows = []
    for p in paths:
        src = Path(p).read_text()
        name = Path(p).name
        for setting in settings:
            res = compile_sources({name: src}, setting=setting)
            ranges = _function_ranges(src)
            cache: dict = {}
            for art in res.contracts:
                if art.source_path != name or not art.creation_bytecode:
                    continue
                for sig, sel in art.method_identifiers.items():
                    fname = sig.split("(")[0]
                    if fname not in ranges:
                        continue
                    start, length = ranges[fname]
                    try:
                        row = check(
                            res, name, f"{name}:{art.name}", start, length, "0x" + sel, cache
                        )
                    except Exception as e:  # noqa: BLE001 -- a batch job records the failure and goes on
                        row = {
                            "selector": sel,
                            "setting": setting,
                            "error": f"{type(e).__name__}: {e}",
                        }
                    row["id"] = f"{name}:{art.name}.{sig}"
                    rows.append(row)
    return rows


def _function_ranges(source: str) -> dict[str, tuple[int, int]]:
    from evmlm.evaluate.structure import _parser

    out = {}
    stack = [_parser().parse(source.encode()).root_node]
    while stack:
        n = stack.pop()
        if n.type == "function_definition":
            name = next(c for c in n.children if c.type == "identifier").text.decode()
            out.setdefault(name, (n.start_byte, n.end_byte - n.start_byte))
        stack.extend(n.children)
    return out


def _dataset_rows(
    run: Path,
    split: str,
    n: int,
    seed: int,
    visibility: str | None = None,
    settings: set[str] | None = None,
) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    from evmlm.evaluate.stage import compile_loader

    load_result = compile_loader(run / "compile")

    f = run / "dataset" / "parquet" / f"{split}.parquet"
    if not f.is_file():
        raise SystemExit(f"{f}: no {split} split; build the dataset first")
    recs = pq.read_table(f).to_pylist()
    recs = [
        r
        for r in recs
        if r.get("selector")
        and r.get("compile_key")
        and r.get("source_start") is not None
        and (settings is None or r.get("setting") in settings)
    ]
    random.Random(seed).shuffle(recs)
    recs = recs[:n]
    recs.sort(key=lambda r: r["compile_key"])
    rows = []
    cache: dict = {}
    loaded: dict[str, Any] = {}
    for i, r in enumerate(recs):
        try:
            if r["compile_key"] not in loaded:
                loaded.clear()
                cache.clear()
                loaded[r["compile_key"]] = load_result(r["compile_key"])
            res = loaded[r["compile_key"]]
            row = check(
                res,
                str(r.get("source_path") or r["contract"].rsplit(":", 1)[0]),
                str(r["contract"]),
                int(r["source_start"]),
                int(r["source_length"]),
                str(r["selector"]),
                cache,
                getter=r.get("kind") == "getter",
                visibility=r.get("visibility"),
            )
        except Exception as e:  # noqa: BLE001 -- a batch job records the failure and goes on
            row = {
                "selector": r.get("selector"),
                "setting": r.get("setting"),
                "error": f"{type(e).__name__}: {str(e)[:200]}",
            }
        row["id"] = r.get("id")
        row["setting"] = r.get("setting", row.get("setting"))
        rows.append(row)
        if (i + 1) % 25 == 0:
            print(f"... {i + 1}/{len(recs)}", file=sys.stderr, flush=True)
    return rows


def _compile_rows(
    run: Path, n: int, seed: int, settings: set[str] | None = None
) -> list[dict[str, Any]]:
    """Development sample before a dataset exists: public functions defined (with a body) in
    deployable contracts of the compile stage's results."""
    from evmlm.errors import EvmlmError
    from evmlm.solc.stage import load_result, read_index

    entries = [
        e
        for e in read_index(run / "compile")
        if e["status"] == "ok"
        and e.get("deployable")
        and (settings is None or e.get("setting") in settings)
    ]
    random.Random(seed).shuffle(entries)
    rows: list[dict[str, Any]] = []
    for e in entries:
        if len(rows) >= n:
            break
        try:
            res = load_result(run / "compile", e["key"])
        except EvmlmError:  # a result the stage did not keep
            continue
        ast = res.asts.get(e["path"]) or {}
        cache: dict = {}
        picked = 0
        for node in ast.get("nodes", []):
            if node.get("nodeType") != "ContractDefinition" or node["name"] not in e["deployable"]:
                continue
            for f in node.get("nodes", []):
                if (
                    f.get("nodeType") != "FunctionDefinition"
                    or not f.get("functionSelector")
                    or not f.get("implemented")
                    or picked >= 3
                ):
                    continue
                start, length, _ = (int(x) for x in f["src"].split(":"))
                try:
                    row = check(
                        res,
                        e["path"],
                        f"{e['path']}:{node['name']}",
                        start,
                        length,
                        "0x" + f["functionSelector"],
                        cache,
                    )
                except Exception as ex:  # noqa: BLE001 -- a batch job records the failure and goes on
                    row = {
                        "selector": f["functionSelector"],
                        "error": f"{type(ex).__name__}: {str(ex)[:200]}",
                    }
                row["id"] = f"{e['path']}:{node['name']}.{f['name']}"
                row["setting"] = e["setting"]
                rows.append(row)
                picked += 1
        if len(rows) and len(rows) % 20 == 0:
            print(f"... {len(rows)}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, help="a run folder with compile/ and dataset/")
    ap.add_argument("--split", default="test")
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--files", nargs="*", help="Solidity files to compile and check instead")
    ap.add_argument("--settings", default="opt200,noopt,ir200")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--only-settings", help="sample only records of these compile settings (a,b)")
    ap.add_argument("--visibility", help="only functions of this visibility (a diagnostic subset)")
    ap.add_argument(
        "--from-compile",
        action="store_true",
        help="sample from the run's compile stage (no dataset)",
    )
    ap.add_argument(
        "--draft-only", action="store_true", help="draft and count statements only (no checks)"
    )
    a = ap.parse_args()
    global DRAFT_ONLY
    DRAFT_ONLY = a.draft_only
    t0 = time.monotonic()
    if a.files:
        rows = _files_rows(a.files, a.settings.split(","))
    elif a.run and a.from_compile:
        only = set(a.only_settings.split(",")) if a.only_settings else None
        rows = _compile_rows(a.run, a.n, a.seed, only)
    elif a.run:
        only = set(a.only_settings.split(",")) if a.only_settings else None
        rows = _dataset_rows(a.run, a.split, a.n, a.seed, a.visibility, only)
    else:
        ap.error("give --run or --files")
    if a.out:
        a.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(summarise(rows))
    print(f"{len(rows)} functions in {time.monotonic() - t0:.0f} s")
    reasons = collections.Counter(
        re.sub(r"0x[0-9a-f]+|\d+", "N", str(r.get("error")))[:90] for r in rows if not r.get("same")
    )
    for reason, k in reasons.most_common(15):
        print(f"{k:4d}  {reason}")
    ops: collections.Counter[str] = collections.Counter()
    for r in rows:
        ops.update(r.get("asm_ops") or {})
    total = sum(ops.values())
    print(f"assembly statements by operation ({total}):")
    for op, k in ops.most_common(15):
        print(f"{k:6d}  {100 * k / max(total, 1):5.1f}%  {op}")


if __name__ == "__main__":
    main()
