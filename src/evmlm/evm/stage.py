"""The ``lift`` stage: lift every compiled contract of the compile stage into per-function TAC.

Input: ``compile/`` (:func:`evmlm.solc.stage.iter_results`). Output under ``lift/``:

- ``shards/<compile key>.<config hash>.jsonl.gz``: one JSON line per contract of that compile
  result: ``compile_key``, ``source_path``, ``contract_name``, ``lifted`` (a
  :meth:`LiftedContract.to_dict`, or null when lifting failed) and ``error`` (one line or null).
  A shard is written atomically and reused by a rerun with the same config (resume); shards of
  other configs are removed.
- ``failures.jsonl``: the contracts that failed, with their error (the batch goes on).
- ``summary.json``: counts (contracts, functions by kind, unresolved jumps, context-bound
  fallbacks, contracts hitting the context bound, partial lifts (a budget ran out: the
  contract's ``lifted.partial`` says which and where), failures, seconds).

:func:`iter_lifted` reads the shards back.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from evmlm import atomic
from evmlm.config import LiftConfig, to_dict
from evmlm.errors import EvmlmError
from evmlm.evm.lifter import LiftedContract, lift_contract

log = logging.getLogger(__name__)

LIFT_VERSION = 2  # bump when the lifter's output changes for the same input
SHARDS = "shards"


def config_hash(cfg: LiftConfig) -> str:
    data = {k: v for k, v in to_dict(cfg).items() if k != "workers"}
    return hashlib.sha256(
        json.dumps({"v": LIFT_VERSION, "cfg": data}, sort_keys=True).encode()
    ).hexdigest()[:12]


def lift_result(result: Any, cfg: LiftConfig) -> list[dict[str, Any]]:
    """Lift every deployable contract of one compile result; failures are recorded, not raised."""
    rows = []
    for c in result.contracts:
        if not c.runtime_bytecode:
            continue
        row: dict[str, Any] = {
            "compile_key": result.key,
            "source_path": c.source_path,
            "contract_name": c.name,
            "lifted": None,
            "error": None,
        }
        try:
            lifted = lift_contract(
                c.runtime_bytecode,
                abi=c.abi,
                storage_layout=c.storage_layout,
                config=cfg,
                what=f"{c.source_path}:{c.name}",
            )
            row["lifted"] = lifted.to_dict()
        except EvmlmError as e:
            row["error"] = f"{type(e).__name__}: {e}"
        except Exception as e:  # a bug in the lifter must not stop the batch; it is recorded
            log.exception("lifting %s:%s failed", c.source_path, c.name)
            row["error"] = f"{type(e).__name__}: {e}"
        rows.append(row)
    return rows


def _write_shard(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic.atomic_path(path) as tmp:
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, sort_keys=True) + "\n")


def _read_shard(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _job(args: tuple[str, str, dict[str, Any], str]) -> tuple[str, str | None]:
    compile_dir, key, cfg_dict, shard = args
    from evmlm.solc.stage import load_result

    cfg = LiftConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg_dict.items()})
    try:
        rows = lift_result(load_result(compile_dir, key), cfg)
    except EvmlmError as e:
        return key, f"{type(e).__name__}: {e}"
    _write_shard(Path(shard), rows)
    return key, None


def lift_compiled(
    compile_dir: Path, out_dir: Path, cfg: LiftConfig, *, progress: bool = True
) -> dict[str, Any]:
    """Lift every compile result in ``compile_dir`` into ``out_dir``; returns the summary."""
    from evmlm.solc.stage import read_index

    t0 = time.perf_counter()
    keys = sorted(
        {e["key"] for e in read_index(compile_dir) if e.get("status") == "ok" and e.get("key")}
    )
    h = config_hash(cfg)
    shard_dir = out_dir / SHARDS
    shard_dir.mkdir(parents=True, exist_ok=True)
    wanted = {shard_dir / f"{k}.{h}.jsonl.gz" for k in keys}
    for p in shard_dir.glob("*.jsonl.gz"):
        if p not in wanted:
            p.unlink()
    todo = [k for k in keys if not (shard_dir / f"{k}.{h}.jsonl.gz").is_file()]
    reused = len(keys) - len(todo)
    job_errors: dict[str, str] = {}
    cfg_dict = to_dict(cfg)
    jobs = [(str(compile_dir), k, cfg_dict, str(shard_dir / f"{k}.{h}.jsonl.gz")) for k in todo]
    bar = tqdm(total=len(jobs), desc="lift", unit="result", disable=not progress)
    if cfg.workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(cfg.workers) as ex:
            for key, err in ex.map(_job, jobs, chunksize=4):
                if err:
                    job_errors[key] = err
                bar.update()
    else:
        for j in jobs:
            key, err = _job(j)
            if err:
                job_errors[key] = err
            bar.update()
    bar.close()
    counts: dict[str, Any] = {
        "compile_results": len(keys),
        "results_reused": reused,
        "contracts": 0,
        "lifted": 0,
        "failures": 0,
        "functions": {},
        "unresolved_jumps": 0,
        "context_fallbacks": 0,
        "contracts_with_unresolved": 0,
        "contracts_with_fallbacks": 0,
        "partial": 0,
    }
    failures = [
        {"compile_key": k, "source_path": None, "contract_name": None, "error": e}
        for k, e in sorted(job_errors.items())
    ]
    for k in keys:
        p = shard_dir / f"{k}.{h}.jsonl.gz"
        if not p.is_file():
            continue
        for r in _read_shard(p):
            counts["contracts"] += 1
            lifted = r.get("lifted")
            if lifted is None:
                counts["failures"] += 1
                failures.append(
                    {k2: r[k2] for k2 in ("compile_key", "source_path", "contract_name", "error")}
                )
                continue
            counts["lifted"] += 1
            for f in lifted["functions"]:
                counts["functions"][f["kind"]] = counts["functions"].get(f["kind"], 0) + 1
            counts["unresolved_jumps"] += lifted["unresolved_jumps"]
            counts["context_fallbacks"] += lifted["context_fallbacks"]
            counts["contracts_with_unresolved"] += bool(lifted["unresolved_jumps"])
            counts["contracts_with_fallbacks"] += bool(lifted["context_fallbacks"])
            counts["partial"] += lifted.get("partial") is not None
    counts["failures"] += len(job_errors)
    atomic.write_text(
        out_dir / "failures.jsonl", "".join(json.dumps(f, sort_keys=True) + "\n" for f in failures)
    )
    counts["seconds"] = round(time.perf_counter() - t0, 3)
    n_fn = sum(counts["functions"].values())
    counts["line"] = (
        f"{counts['lifted']}/{counts['contracts']} contracts lifted, {n_fn} functions "
        f"({counts['functions'].get('public', 0)} public), {counts['unresolved_jumps']} unresolved jumps, "
        f"{counts['context_fallbacks']} context fallbacks, {counts['partial']} partial (budget), "
        f"{counts['failures']} failures"
    )
    atomic.write_json(out_dir / "summary.json", counts)
    log.info("lift: %s", counts["line"])
    return counts


def run_stage(ctx: Any) -> dict[str, Any]:
    """Pipeline entry (``evmlm run`` / ``evmlm lift-stage``): lift ``compile/`` into ``lift/``."""
    return lift_compiled(ctx.dir_of("compile"), ctx.stage_dir, ctx.config.lift)


def iter_lifted(lift_dir: str | Path) -> Iterator[tuple[str, str, str, LiftedContract]]:
    """``(compile_key, contract_source_path, contract_name, LiftedContract)`` per lifted contract.

    Contracts that failed to lift are skipped (they are listed in ``failures.jsonl``).
    Raises :class:`EvmlmError` when ``lift_dir`` has no shards.
    """
    shard_dir = Path(lift_dir) / SHARDS
    if not shard_dir.is_dir():
        raise EvmlmError(f"{lift_dir}: no lift shards; run `evmlm run --until lift` first")
    for p in sorted(shard_dir.glob("*.jsonl.gz")):
        for r in _read_shard(p):
            if r.get("lifted") is not None:
                yield (
                    r["compile_key"],
                    r["source_path"],
                    r["contract_name"],
                    LiftedContract.from_dict(r["lifted"]),
                )
