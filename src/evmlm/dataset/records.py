"""Pair records and the shard files that hold them, shared by the corpus pass
(:mod:`evmlm.dataset.build`) and the wrapper pass (:mod:`evmlm.dataset.wrappers`).

A raw record is the pair record of ``docs/architecture.md`` ("Pair record") before signature
resolution, clustering and splitting: it carries ``true_signature`` (the compiler's) and no
``signature``, ``cluster_id`` or ``split``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evmlm import atomic
from evmlm.dataset.filters import whitespace_tokens
from evmlm.dataset.pairing import SourceFunction


@dataclass(frozen=True)
class LiftedFn:
    """The parts of a lifted function a pair needs (from ``evmlm.evm.LiftedFunction``)."""

    selector: str  # "0x" + 8 hex
    tac: str
    complexity: int
    n_blocks: int


def lifted_functions(functions: Iterable[Any]) -> tuple[LiftedFn, ...]:
    """Public functions (with a selector) of a lifted contract as :class:`LiftedFn` records."""
    out = []
    for f in functions:
        sel = getattr(f, "selector", None) if not isinstance(f, Mapping) else f.get("selector")
        if not sel:
            continue
        get = (
            (lambda k, d=None: f.get(k, d))
            if isinstance(f, Mapping)
            else (lambda k, d=None: getattr(f, k, d))
        )
        kind = get("kind", "public")
        if kind not in (None, "public"):
            continue
        out.append(
            LiftedFn(
                selector=str(sel).lower(),
                tac=get("tac") or "",
                complexity=int(get("complexity") or 0),
                n_blocks=int(get("n_blocks") or 0),
            )
        )
    return tuple(sorted(out, key=lambda x: x.selector))


def setting_fields(setting: Any) -> dict[str, Any]:
    """The compile-setting fields of a pair record from a setting (or its name)."""
    if isinstance(setting, str):
        from evmlm.solc import get_setting

        setting = get_setting(setting)
    return {
        "setting": setting.name,
        "optimizer": bool(setting.optimizer),
        "runs": int(setting.runs),
        "via_ir": bool(setting.via_ir),
        "evm_version": setting.evm_version,
    }


def package_of(path: str, packages: Mapping[str, str]) -> str:
    """The corpus package of a source path: the manifest's entry, else ``@scope/name`` or the
    first path component."""
    if path in packages:
        return packages[path]
    parts = path.split("/")
    if parts[0].startswith("@") and len(parts) > 1:
        name = "/".join(parts[:2])
    else:
        name = parts[0] if len(parts) > 1 else ""
    return re.sub(
        r"(?<=.)@\d[\w.\-+]*$", "", name
    )  # "pkg@1.2.3" (a second version beside the default) -> "pkg"


def make_record(
    fn: SourceFunction,
    lifted: LiftedFn,
    *,
    contract: str,
    compile_key: str,
    version: str,
    setting: Mapping[str, Any],
    packages: Mapping[str, str],
    origin: str,
) -> dict[str, Any]:
    """One raw pair record (no ``signature`` resolution, ``cluster_id`` or ``split`` yet)."""
    rid = hashlib.sha256(
        f"{compile_key}\0{contract}\0{lifted.selector}\0{origin}".encode()
    ).hexdigest()[:24]
    return {
        "id": rid,
        "contract": contract,
        "source_package": package_of(fn.source_path, packages),
        "compiler_version": version,
        **setting,
        "compile_key": compile_key,
        "source_path": fn.source_path,
        "source_start": fn.source_start,
        "source_length": fn.source_length,
        "selector": lifted.selector,
        "true_signature": fn.signature,
        "visibility": fn.visibility,
        "state_mutability": fn.state_mutability,
        "kind": fn.kind,
        "defining_contract": fn.defining_contract,
        "origin": origin,
        "tac": lifted.tac,
        "solidity": fn.solidity,
        "contract_context": fn.contract_context,
        "internal_member_calls": list(fn.internal_member_calls),  # raw only (labels)
        "reached": [[text, list(calls)] for text, calls in fn.reached],  # raw only (labels)
        "n_tac_lines": sum(1 for line in lifted.tac.splitlines() if line.strip()),
        "n_solidity_tokens": whitespace_tokens(fn.solidity),
        "complexity": lifted.complexity,
    }


def add_draft(record: dict[str, Any], artifact: Any, lifted: LiftedFn, result: Any) -> None:
    """Set ``record["draft"]``: the structural decompiler's Solidity for the record's function
    (:func:`evmlm.structural.draft_pair`, from the same TAC as the record's ``tac``: the
    lift stage's, of ``artifact``'s runtime code), the draft that fine-tuning, decompilation
    and evaluation prompts carry; and ``record["draft_error"]``: None, or why the draft's body
    is a placeholder (it still is the draft) or, with ``draft`` None, why there is no draft.
    ``result``: the compile result holding the record's source (its ASTs give the scope).
    Never raises: a batch job records the failure and goes on."""
    from evmlm.evm.abi import selector_of, signature_of
    from evmlm.evm.lifter import LiftedContract, LiftedFunction
    from evmlm.structural import draft_pair

    try:
        code = str(artifact.runtime_bytecode or "").removeprefix("0x")
        abi = list(artifact.abi or [])
        want = int(lifted.selector, 16)
        signature = next(  # as the lifter names it with this ABI
            (
                signature_of(e)
                for e in abi
                if e.get("type", "function") == "function" and selector_of(signature_of(e)) == want
            ),
            None,
        )
        fn = LiftedFunction(
            lifted.selector,
            "public",
            0,
            signature,
            lifted.tac,
            lifted.n_blocks,
            lifted.complexity,
            False,
            False,
        )  # payable, signature and types come from the ABI entry
        d = draft_pair(
            LiftedContract([fn], len(code) // 2, 0, 0, 0, 0, 0),
            fn,
            abi=abi,
            storage_layout=artifact.storage_layout,
            solc_version=record.get("compiler_version"),
            solidity=str(record["solidity"]),
            asts=getattr(result, "asts", None),
            source_path=str(record["source_path"]),
            source_start=record.get("source_start"),
            runtime_bytecode=code or None,
            kind=record.get("kind"),
            visibility=record.get("visibility"),
        )
        record["draft"], record["draft_error"] = d.text, d.error
    except Exception as e:  # noqa: BLE001 -- a batch job records the failure and goes on
        record["draft"], record["draft_error"] = None, f"{type(e).__name__}: {str(e)[:200]}"


def write_shard(
    path: Path,
    records: Sequence[dict[str, Any]],
    counts: Mapping[str, int],
    signatures: Iterable[tuple[str, str]] = (),
) -> None:
    """A shard: a header line (counts, every (signature, selector) of the compile result's
    contracts for the signature database), then one raw record per line (atomic)."""
    with atomic.atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(
            json.dumps(
                {"counts": dict(counts), "signatures": sorted(set(signatures))}, sort_keys=True
            )
            + "\n"
        )
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")


def read_shard(path: Path) -> tuple[list[dict[str, Any]], dict[str, int], list[tuple[str, str]]]:
    """(records, counts, (signature, selector) pairs) of a shard written by :func:`write_shard`."""
    with open(path, encoding="utf-8") as f:
        head = json.loads(f.readline())
        return (
            [json.loads(line) for line in f if line.strip()],
            head["counts"],
            [tuple(x) for x in head.get("signatures", [])],
        )
