"""Decompile speed: seconds per function for draft only, draft + verify, draft + model + verify,
against Panoramix on the same contracts.

    .venv/bin/python benchmarks/decompile.py --compile-dir runs/default/compile [--contracts 5] [--model DIR]
    .venv/bin/python benchmarks/decompile.py --fixtures   # tests/fixtures/evaluate/*.sol

Contracts: ``--contracts`` deployable contracts of a compile stage folder at evenly spaced
runtime-size ranks (or the fixture contracts compiled with solc 0.8.26). Each is decompiled by
:func:`evmlm.decompile.decompile` from its runtime bytecode, with its ABI (signatures):

- ``draft``: the structural draft alone (``verify=False``, no model);
- ``draft + verify``: the draft compiled with the metadata's solc and every function executed
  against the original runtime code (3 edge + 32 random calls, two callers);
- ``draft + model + verify``: verified selection with model candidates (greedy + 2 samples)
  for the functions whose draft does not behave the same. ``--model``: a model folder; by
  default an *untrained* ``tiny`` preset model with a tokenizer trained on the contracts'
  own sources (its output is noise: this measures the machinery's cost, not quality);
- ``panoramix`` (the named baseline): :func:`evmlm.evaluate.baselines.panoramix.decompile_panoramix`
  on the same bytecode (its own venv, a subprocess per contract, ``--timeout`` seconds).

Prints seconds per function (total seconds / functions) per system and the ratio Panoramix /
system (> 1: evmlm is faster), plus how many functions each verified system found the same.

Quality on a package outside the corpus (the issue's "5 contracts" check)::

    .venv/bin/python benchmarks/decompile.py --artifacts 'pkg/lib/generated-artifacts/*.json' \
        [--signatures runs/default/dataset/signatures.tsv] [--out-dir DIR]

decompiles each artifact's runtime bytecode alone (no ABI; signatures from the database when
given), as ``evmlm decompile`` does, and prints per contract: the solc version, whether the
file compiles as a whole, functions, functions present as code (drafted, not a stub), and
verified the same / undetermined. Artifacts: solc standard JSON output of one contract
(``compilerOutput.evm.deployedBytecode.object``, 0x / Truffle ``deployedBytecode``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _compiled(compile_dir: Path, n: int) -> list[tuple[str, str, list[Any]]]:
    from evmlm.solc.stage import iter_results

    seen: set[str] = set()
    pool = []
    for r in iter_results(compile_dir):
        for c in r.contracts:
            code = c.runtime_bytecode
            if (
                code
                and code not in seen
                and 2_000 <= len(code) // 2 <= 12_000
                and c.abi
                and not code.startswith("73")
            ):
                seen.add(code)
                pool.append((f"{c.source_path}:{c.name}", code, list(c.abi)))
    pool.sort(key=lambda t: len(t[1]))
    if len(pool) <= n:
        return pool
    return [pool[round(i * (len(pool) - 1) / max(1, n - 1))] for i in range(n)]


def _fixtures() -> list[tuple[str, str, list[Any]]]:
    from evmlm.solc import compile_sources

    out = []
    for p in sorted((ROOT / "tests" / "fixtures" / "evaluate").glob("*.sol")):
        r = compile_sources({p.name: p.read_text()}, version="0.8.26")
        for c in r.contracts:
            if c.runtime_bytecode:
                out.append((f"{p.name}:{c.name}", c.runtime_bytecode, list(c.abi)))
    return out


def _tiny_model(texts: list[str], out: Path) -> Path:
    """An untrained ``tiny`` Llama and a BPE tokenizer trained on ``texts`` (as the tests' fixture)."""
    from evmlm.models.presets import build_model
    from evmlm.train.tokenizer import train_tokenizer

    tok = train_tokenizer(texts, 600, min_frequency=1, model_max_length=256)
    model = build_model(
        "tiny", len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _runtime_of(artifact: dict[str, Any]) -> tuple[str, str]:
    """(contract name, runtime bytecode hex) of a 0x / Truffle / solc artifact."""
    evm = (artifact.get("compilerOutput") or artifact).get("evm") or {}
    code = (evm.get("deployedBytecode") or {}).get("object") or artifact.get("deployedBytecode")
    if isinstance(code, dict):
        code = code.get("object")
    return str(artifact.get("contractName", "?")), str(code or "").removeprefix("0x")


def _package_quality(paths: list[Path], signatures: Path | None, out_dir: Path | None) -> int:
    import json

    from evmlm.config import DecompileConfig
    from evmlm.decompile import decompile, load_signature_db

    sigs = load_signature_db(signatures) if signatures else None
    total = present = same = undet = n_compile = n = 0
    t_all = time.perf_counter()
    for p in paths:
        name, code = _runtime_of(json.loads(p.read_text()))
        if not code:
            print(f"  {p.name}: no runtime bytecode (an interface or abstract contract): skipped")
            continue
        t0 = time.perf_counter()
        res = decompile(code, signatures=sigs, config=DecompileConfig())
        fns = [f for f in res.functions if f.selector]
        k_code = sum(1 for f in fns if f.draft and not f.error)
        k_same = sum(1 for f in fns if f.same is True)
        k_undet = sum(1 for f in fns if f.same is None and f.draft and not f.error)
        n += 1
        n_compile += bool(res.compiles)
        total, present, same, undet = (
            total + len(fns),
            present + k_code,
            same + k_same,
            undet + k_undet,
        )
        if out_dir:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{name}.sol").write_text(res.source)
        print(
            f"  {name}: solc {res.compiler_version} (metadata {res.metadata_version}),"
            f" compiles {res.compiles}, functions {len(fns)}, as code {k_code}, same {k_same},"
            f" undetermined {k_undet}, {time.perf_counter() - t0:.1f} s"
        )
        for f in fns:
            if f.same is not True:
                print(f"      {f.selector} {f.signature}: {f.verdict[:120]}")
    print(
        f"{n} contracts, {n_compile} compile as a whole; {total} functions: as code {present}"
        f" ({100 * present / max(1, total):.1f}%), same {same} ({100 * same / max(1, total):.1f}%),"
        f" undetermined {undet}; {time.perf_counter() - t_all:.0f} s,"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--artifacts", nargs="*", type=Path, help="compiled artifacts (JSON) to decompile"
    )
    ap.add_argument("--signatures", type=Path, help="signature database (signatures.tsv)")
    ap.add_argument("--out-dir", type=Path, help="write each decompiled .sol here")
    ap.add_argument("--compile-dir", type=Path)
    ap.add_argument("--fixtures", action="store_true")
    ap.add_argument("--contracts", type=int, default=5)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--timeout", type=float, default=60.0, help="Panoramix seconds per contract")
    args = ap.parse_args()
    if args.artifacts:
        return _package_quality(sorted(args.artifacts), args.signatures, args.out_dir)

    from evmlm.config import DecompileConfig
    from evmlm.decompile import DecompileInput, decompile
    from evmlm.evaluate.baselines.panoramix import decompile_panoramix, is_available
    from evmlm.evaluate.errors import BaselineError
    from evmlm.evm.abi import selector_of, signature_of

    if args.compile_dir:
        contracts = _compiled(args.compile_dir, args.contracts)
    else:
        contracts = _fixtures()
    if not contracts:
        print("no contracts: pass --compile-dir runs/<name>/compile or --fixtures", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="evmlm-bench-"))
    model_dir = args.model
    if model_dir is None:
        texts = [
            p.read_text() for p in sorted((ROOT / "tests" / "fixtures" / "evaluate").glob("*.sol"))
        ]
        model_dir = _tiny_model(texts, tmp / "tiny")
    from evmlm.train import load_for_inference

    model, tok = load_for_inference(model_dir)

    systems = ("draft", "draft + verify", "draft + model + verify", "panoramix")
    seconds = dict.fromkeys(systems, 0.0)
    functions = dict.fromkeys(systems, 0)
    same = dict.fromkeys(systems, 0)
    failures: list[str] = []
    for name, code, abi in contracts:
        inp = DecompileInput(bytes.fromhex(code), abi=abi, name=name)
        runs = (
            ("draft", DecompileConfig(verify=False), None),
            ("draft + verify", DecompileConfig(verify=True), None),
            (
                "draft + model + verify",
                DecompileConfig(verify=True, max_new_tokens=128, candidates=4),
                model,
            ),
        )
        for label, cfg, m in runs:
            t0 = time.perf_counter()
            res = decompile(inp, model=m, tokenizer=tok if m is not None else None, config=cfg)
            seconds[label] += time.perf_counter() - t0
            functions[label] += len(res.functions)
            same[label] += sum(f.same is True for f in res.functions)
        n_fn = len(res.functions)
        if is_available():
            sigs = {
                f"0x{selector_of(signature_of(e)):08x}": signature_of(e)
                for e in abi
                if e.get("type", "function") == "function"
            }
            t0 = time.perf_counter()
            try:
                decompile_panoramix(code, timeout_s=args.timeout, signatures=sigs)
            except BaselineError as e:
                failures.append(f"panoramix {name}: {str(e).splitlines()[0][:100]}")
            seconds["panoramix"] += time.perf_counter() - t0
            functions["panoramix"] += n_fn
        print(f"  {name}: {n_fn} functions", file=sys.stderr)
    load = os.getloadavg()[0]
    print(
        f"decompile: {len(contracts)} contracts, {functions['draft']} functions; load average {load:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'system':<26}{'s/function':>12}{'vs panoramix':>14}{'same':>10}")
    pan = seconds["panoramix"] / functions["panoramix"] if functions["panoramix"] else None
    for s in systems:
        if not functions[s]:
            print(
                f"{s:<26}{'–':>12}{'–':>14}{'':>10}  (not run: Panoramix not installed)"
                if s == "panoramix"
                else f"{s:<26}–"
            )
            continue
        per = seconds[s] / functions[s]
        ratio = f"{pan / per:.2f}x" if pan else "–"
        shown = f"{same[s]}/{functions[s]}" if "verify" in s else ""
        print(f"{s:<26}{per:>12.3f}{ratio:>14}{shown:>10}")
    for f in failures:
        print(f"  note: {f}")
    print(
        "ratio: Panoramix seconds per function / the system's (> 1: the system is faster); same: functions verified the same"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
