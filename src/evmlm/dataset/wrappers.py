"""Concrete wrappers that bring abstract-contract and library code into bytecode.

An abstract contract has no bytecode, and a library's ``internal`` functions only reach
bytecode when a contract calls them. For every compile result whose target file defines such
contracts (solc ≥ 0.6, where ``abstract``/``override`` exist) one wrapper file is generated:

* ``contract <C>__EvmlmConcrete is <C>``: passes default arguments (zero, ``address(0)``,
  empty string/bytes, empty dynamic array) to every base constructor that needs arguments
  and does not get them elsewhere, and implements every unimplemented function/modifier with an
  empty body (``override(<the declaring bases>)``). Pairs come from the inherited implemented
  functions; the generated stubs are not paired.
* ``contract <L>__EvmlmLibrary``: one ``external`` function per implemented ``internal``
  library function with an ABI-encodable signature (no ``storage`` parameters, mappings or
  function types), calling ``L.f(...)``. Each is paired with the *library function's* source,
  its selector and signature being the wrapper's (same name and parameter types); the
  record's ``contract`` is the wrapper (``<wrapper file>:<L>__EvmlmLibrary``), whose compile
  result (``compile_key``, in the compile cache) deploys it.

The wrapper file is compiled with the compile result's version, setting and remappings
(``evmlm.solc.compile_job``; cached), lifted (``evmlm.evm.lift_contract``) and paired. Per
compile result one shard is written under ``_work/wrappers/`` (failures too, counted), so a
rerun resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semantic_version import Version
from tqdm import tqdm

from evmlm.config import DatasetConfig
from evmlm.dataset.pairing import AstIndex, SourceFunction, internal_member_calls
from evmlm.dataset.records import (
    add_draft,
    lifted_functions,
    make_record,
    setting_fields,
    write_shard,
)
from evmlm.structural import DRAFT_VERSION

log = logging.getLogger(__name__)

# bump when the generated wrappers or their records change (5: draft; 6: reached)
WRAPPER_VERSION = 6
WRAPPER_DIR = "__evmlm_wrappers__"
MIN_VERSION = Version("0.6.0")


class WrapperSkip(Exception):
    """A contract cannot be wrapped (reason in the message)."""


@dataclass
class WrapperPlan:
    """The generated wrapper file of one compile result."""

    path: str
    text: str
    abstract: list[str] = field(default_factory=list)  # wrapper contract names
    # wrapper contract name -> (source path, library name); not the AST id, which differs
    # between the original (possibly batched) solc run and the wrapper's own run
    libraries: dict[str, tuple[str, str]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count


# ------------------------------------------------------------------ generation helpers


def _src_text(index: AstIndex, path: str, node: Mapping[str, Any]) -> str:
    return index.text(path, node["src"])[2]


def _type_text(
    index: AstIndex, path: str, param: Mapping[str, Any], qualify: str | None = None
) -> str:
    tn = param.get("typeName")
    if not tn:
        raise WrapperSkip("untyped parameter")
    if tn.get("nodeType") in ("Mapping", "FunctionTypeName"):
        raise WrapperSkip("mapping or function-type parameter")
    text = _src_text(index, path, tn)
    if qualify and tn.get("nodeType") == "UserDefinedTypeName" and "." not in text:
        ref = index.decls.get(tn.get("referencedDeclaration", -1))
        if (
            ref is not None
            and ref.contract == qualify
            and ref.node.get("nodeType") != "ContractDefinition"
        ):
            text = f"{qualify}.{text}"
    return text


def _params(
    index: AstIndex,
    path: str,
    plist: Mapping[str, Any] | None,
    *,
    prefix: str,
    qualify: str | None = None,
    allow_storage: bool = False,
) -> list[tuple[str, str]]:
    """[(declaration text, name)] of a ParameterList, renamed p0, p1, ... ."""
    out = []
    for i, p in enumerate((plist or {}).get("parameters", [])):
        loc = p.get("storageLocation", "default")
        if loc == "storage" and not allow_storage:
            raise WrapperSkip("storage parameter")
        t = _type_text(index, path, p, qualify)
        name = f"{prefix}{i}"
        out.append((f"{t}{'' if loc == 'default' else ' ' + loc} {name}", name))
    return out


def _default_value(index: AstIndex, path: str, param: Mapping[str, Any]) -> str:
    tn = param.get("typeName") or {}
    ts = (param.get("typeDescriptions") or {}).get("typeString", "")
    text = _src_text(index, path, tn) if tn else ts
    if ts.startswith(("uint", "int")) and "[" not in ts:
        return "0"
    if ts == "bool":
        return "false"
    if ts.startswith("address") and "[" not in ts:
        return "address(0)"
    if ts.startswith(("contract ", "interface ")) and "[" not in ts:
        return f"{text}(address(0))"
    if ts.startswith("bytes") and ts[5:6].isdigit() and "[" not in ts:
        return f"{text}(0)"
    if ts.startswith(("string", "bytes")) and "[" not in ts:
        return '""'
    if ts.startswith("enum ") and "[" not in ts:
        return f"{text}(0)"
    if ts.endswith(("[] memory", "[] storage ref", "[]")):
        return f"new {text}(0)"
    if tn.get("nodeType") == "UserDefinedTypeName" and ts and not ts.startswith("struct"):
        return f"{text}.wrap(0)"  # user-defined value type
    raise WrapperSkip(f"no default value for {ts or 'type'}")


def _sig_key(node: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    params = (node.get("parameters") or {}).get("parameters", [])
    return node.get("name", ""), tuple(
        ((p.get("typeDescriptions") or {}).get("typeString", "").replace(" calldata", " memory"))
        for p in params
    )


def _getter_key(node: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    types = []
    tn = node.get("typeName") or {}
    while tn.get("nodeType") in ("Mapping", "ArrayTypeName"):
        if tn["nodeType"] == "Mapping":
            types.append(
                (tn.get("keyType", {}).get("typeDescriptions") or {}).get("typeString", "")
            )
            tn = tn.get("valueType") or {}
        else:
            types.append("uint256")
            tn = tn.get("baseType") or {}
    return node.get("name", ""), tuple(types)


def abstract_wrapper(index: AstIndex, path: str, cdef: Mapping[str, Any], version: Version) -> str:
    """Source of ``contract <C>__EvmlmConcrete is <C>``. Raises WrapperSkip."""
    name = cdef["name"]
    bases = [index.decls[i] for i in cdef.get("linearizedBaseContracts", []) if i in index.decls]
    if any(b.node.get("contractKind") == "library" for b in bases):
        raise WrapperSkip("library base")
    # unimplemented functions and modifiers, most-derived first
    implemented: set[Any] = set()
    stubs: dict[Any, tuple[Any, Mapping[str, Any], list[Any]]] = {}
    for b in bases:
        for n in b.node.get("nodes", []):
            nt = n.get("nodeType")
            if nt == "VariableDeclaration" and n.get("visibility") == "public":
                implemented.add(
                    ("f", _getter_key(n))
                )  # a public state variable implements its getter
                continue
            if nt == "FunctionDefinition" and n.get("kind", "function") == "function":
                key = ("f", _sig_key(n))
            elif nt == "ModifierDefinition":
                key = ("m", n.get("name"))
            else:
                continue
            has_body = (
                n.get("body") is not None
                if nt == "ModifierDefinition"
                else n.get("implemented", n.get("body") is not None)
            )
            if has_body:
                implemented.add(key)
            elif key not in implemented:
                if key in stubs:
                    # list only declarers not already overridden by a more-derived declarer
                    if not any(
                        b.node["id"] in d.node.get("linearizedBaseContracts", ())
                        for d in stubs[key][2]
                    ):
                        stubs[key][2].append(b)
                else:
                    stubs[key] = (b, n, [b])
    lines = []
    for key, (b, n, declarers) in stubs.items():
        if key in implemented:
            continue
        ovr = (
            "override"
            if len(declarers) == 1
            else f"override({', '.join(sorted({d.node['name'] for d in declarers}))})"
        )
        params = ", ".join(
            d
            for d, _ in _params(
                index,
                b.path,
                n.get("parameters"),
                prefix="p",
                allow_storage=n.get("visibility") in ("internal", "private"),
            )
        )
        if n["nodeType"] == "ModifierDefinition":
            lines.append(f"    modifier {n['name']}({params}) {ovr} {{ _; }}")
            continue
        rets = ", ".join(
            d
            for d, _ in _params(
                index,
                b.path,
                n.get("returnParameters"),
                prefix="r",
                allow_storage=n.get("visibility") in ("internal", "private"),
            )
        )
        vis = n.get("visibility", "public")
        mut = n.get("stateMutability", "nonpayable")
        mut = "" if mut == "nonpayable" else f" {mut}"
        lines.append(
            f"    function {n['name']}({params}) {vis}{mut} {ovr}{f' returns ({rets})' if rets else ''} {{}}"
        )
    # base constructors that need arguments and do not get them
    given: set[int] = set()
    for b in bases:
        for spec in b.node.get("baseContracts", []):
            if spec.get("arguments") is not None:
                given.add((spec.get("baseName") or {}).get("referencedDeclaration", -1))
        for n in b.node.get("nodes", []):
            if n.get("nodeType") == "FunctionDefinition" and (
                n.get("kind") == "constructor" or n.get("isConstructor")
            ):
                for m in n.get("modifiers", []):
                    given.add((m.get("modifierName") or {}).get("referencedDeclaration", -1))
    calls = []
    for b in bases:
        if b.node["id"] in given:
            continue
        ctor = next(
            (
                n
                for n in b.node.get("nodes", [])
                if n.get("nodeType") == "FunctionDefinition"
                and (n.get("kind") == "constructor" or n.get("isConstructor"))
            ),
            None,
        )
        params = ((ctor or {}).get("parameters") or {}).get("parameters", [])
        if params:
            calls.append(
                f"{b.node['name']}({', '.join(_default_value(index, b.path, p) for p in params)})"
            )
    vis = " public" if version < Version("0.7.0") else ""
    ctor_line = f"    constructor(){vis} {' '.join(calls)} {{}}" if calls else ""
    body = "\n".join(x for x in [ctor_line, *lines] if x)
    return f"contract {name}__EvmlmConcrete is {name} {{\n{body}\n}}\n"


def library_wrapper(index: AstIndex, path: str, cdef: Mapping[str, Any]) -> tuple[str, int]:
    """Source of ``contract <L>__EvmlmLibrary`` and how many functions it wraps. Raises WrapperSkip."""
    name = cdef["name"]
    fns = []
    for n in cdef.get("nodes", []):
        if n.get("nodeType") != "FunctionDefinition" or n.get("kind", "function") != "function":
            continue
        if n.get("visibility") != "internal" or not n.get("implemented", n.get("body") is not None):
            continue
        try:
            params = _params(index, path, n.get("parameters"), prefix="p", qualify=name)
            rets = _params(index, path, n.get("returnParameters"), prefix="r", qualify=name)
        except WrapperSkip:
            continue
        mut = n.get("stateMutability", "nonpayable")
        mut = "" if mut == "nonpayable" else f" {mut}"
        call = f"{name}.{n['name']}({', '.join(a for _, a in params)})"
        ret_decl = f" returns ({', '.join(d.rsplit(' ', 1)[0] for d, _ in rets)})" if rets else ""
        stmt = f"return {call};" if rets else f"{call};"
        fns.append(
            f"    function {n['name']}({', '.join(d for d, _ in params)}) external{mut}{ret_decl} {{ {stmt} }}"
        )
    if not fns:
        raise WrapperSkip("no wrappable internal function")
    return f"contract {name}__EvmlmLibrary {{\n" + "\n".join(fns) + "\n}\n", len(fns)


def plan_wrappers(result: Any) -> WrapperPlan | None:
    """The wrapper file for a compile result's target files, or None when nothing to wrap."""
    version = Version(result.version)
    if version < MIN_VERSION:
        return None
    index = AstIndex(result.sources, result.asts)
    targets = list(
        getattr(result, "targets", []) or sorted({a.source_path for a in result.contracts})
    )
    deployable = {(a.source_path, a.name) for a in result.contracts if a.runtime_bytecode}
    parts: list[str] = []
    plan = WrapperPlan(path="", text="")
    for (path, cname), cdef in sorted(index.contracts.items()):
        kind = cdef.get("contractKind")
        if path not in targets or (kind != "library" and (path, cname) in deployable):
            continue
        try:
            if kind == "library":
                text, _ = library_wrapper(index, path, cdef)
                parts.append(text)
                plan.libraries[f"{cname}__EvmlmLibrary"] = (path, cname)
            elif kind == "contract" and cdef.get("abstract", False):
                has_public = any(
                    (
                        n.get("nodeType") == "FunctionDefinition"
                        and n.get("visibility") in ("public", "external")
                        and n.get("implemented")
                    )
                    or (
                        n.get("nodeType") == "VariableDeclaration"
                        and n.get("visibility") == "public"
                    )
                    for b in cdef.get("linearizedBaseContracts", [])
                    if b in index.decls
                    for n in index.decls[b].node.get("nodes", [])
                )
                if not has_public:
                    plan.skipped["nothing public"] = plan.skipped.get("nothing public", 0) + 1
                    continue
                parts.append(abstract_wrapper(index, path, cdef, version))
                plan.abstract.append(f"{cname}__EvmlmConcrete")
        except WrapperSkip as e:
            plan.skipped[str(e)] = plan.skipped.get(str(e), 0) + 1
    if not parts:
        return None if not plan.skipped else plan
    head = f"// SPDX-License-Identifier: UNLICENSED\npragma solidity {result.version};\n"
    if version < Version("0.8.0"):
        head += "pragma experimental ABIEncoderV2;\n"
    imports = "".join(f'import "{t}";\n' for t in targets)
    plan.path = f"{WRAPPER_DIR}/{hashlib.sha256(result.key.encode()).hexdigest()[:16]}.sol"
    plan.text = head + imports + "\n" + "\n".join(parts)
    return plan


# ------------------------------------------------------------------ compile, lift, pair


class LiftTimeout(Exception):
    """Lifting one wrapper contract exceeded its wall-clock guard."""


@contextlib.contextmanager
def _wall_clock_guard(seconds: float) -> Iterator[None]:
    """Raise LiftTimeout in the block after ``seconds`` of wall time (SIGALRM; main thread of a
    POSIX process only — a no-op elsewhere). A backstop to the lifter's own budget."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise LiftTimeout(f"lifting took longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _library_function_for(
    index: AstIndex, wrapper_fn: Mapping[str, Any], library_id: int
) -> Mapping[str, Any] | None:
    from evmlm.dataset.pairing import _referenced_ids

    lib = index.decls[library_id].node
    ids = {n["id"] for n in lib.get("nodes", []) if n.get("nodeType") == "FunctionDefinition"}
    for i in _referenced_ids(wrapper_fn.get("body") or {}):
        if i in ids:
            return index.decls[i].node
    return None


def pair_wrappers(
    result: Any,
    plan: WrapperPlan,
    compiled: Any,
    lifted: Mapping[str, Any],
    packages: Mapping[str, str],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Pair records from a compiled + lifted wrapper file.

    ``lifted``: wrapper contract name → LiftedContract-like (``.functions``). Records get
    ``origin = "wrapper"``; ``contract`` names the wrapped abstract contract (``path:Name``,
    deployed as ``Name__EvmlmConcrete``) or the library wrapper contract.
    """
    index = AstIndex(compiled.sources, compiled.asts)
    setting = setting_fields(compiled.setting)
    counts = {"resolved": 0, "no_tac": 0, "stubs": 0}
    records: list[dict[str, Any]] = []
    for art in compiled.contracts:
        if art.source_path != plan.path or art.name not in lifted:
            continue
        by_sel = {f.selector: f for f in lifted_functions(lifted[art.name].functions)}
        if art.name in plan.libraries:
            lib = index.decls[index.contracts[plan.libraries[art.name]]["id"]]
            wrapper_def = index.contracts[(plan.path, art.name)]
            for n in wrapper_def.get("nodes", []):
                if n.get("nodeType") != "FunctionDefinition" or not n.get("functionSelector"):
                    continue
                sel = "0x" + n["functionSelector"]
                target = _library_function_for(index, n, lib.node["id"])
                if target is None:
                    continue
                if sel not in by_sel:
                    counts["no_tac"] += 1
                    continue
                signature = next(
                    (s for s, v in art.method_identifiers.items() if "0x" + v == sel), None
                )
                start, length, text = index.text(lib.path, target["src"])
                fn = SourceFunction(
                    selector=sel,
                    signature=signature or "",
                    kind="function",
                    defining_contract=f"{lib.path}:{lib.contract}",
                    source_path=lib.path,
                    source_start=start,
                    source_length=length,
                    solidity=text,
                    visibility=target.get("visibility", "internal"),
                    state_mutability=target.get("stateMutability", "nonpayable"),
                    contract_context=index.context(target),
                    internal_member_calls=internal_member_calls(target),
                    reached=index.reached(target),
                )
                # the deployed contract is the wrapper (evaluation recompiles and runs it)
                record = make_record(
                    fn,
                    by_sel[sel],
                    contract=f"{plan.path}:{art.name}",
                    compile_key=compiled.key,
                    version=compiled.version,
                    setting=setting,
                    packages=packages,
                    origin="wrapper",
                )
                add_draft(record, art, by_sel[sel], compiled)
                records.append(record)
                counts["resolved"] += 1
        else:
            fns, _ = index.resolve(plan.path, art.name, art.method_identifiers)
            wrapped = art.name[: -len("__EvmlmConcrete")]
            cdef = next(
                ((p, c) for (p, c) in index.contracts if c == wrapped and p != plan.path), None
            )
            for fn in fns:
                if fn.source_path == plan.path:
                    counts["stubs"] += 1
                    continue
                if fn.selector not in by_sel:
                    counts["no_tac"] += 1
                    continue
                contract = f"{cdef[0]}:{cdef[1]}" if cdef else fn.defining_contract
                record = make_record(
                    fn,
                    by_sel[fn.selector],
                    contract=contract,
                    compile_key=compiled.key,
                    version=compiled.version,
                    setting=setting,
                    packages=packages,
                    origin="wrapper",
                )
                add_draft(record, art, by_sel[fn.selector], compiled)
                records.append(record)
                counts["resolved"] += 1
    return records, counts


def wrap_result(
    result: Any, packages: Mapping[str, str], lift_config: Any = None
) -> tuple[list[dict[str, Any]], dict[str, int], list[tuple[str, str]]]:
    """Generate, compile, lift and pair the wrappers of one compile result.

    Returns (records, counts, (signature, selector) pairs of the wrappers). Compile and lift
    failures are counted (``compile_failed``, ``lift_failed``), never raised.
    """
    from evmlm.evm import lift_contract
    from evmlm.solc import CompileError, compile_job

    counts: dict[str, int] = {
        "wrapper_files": 0,
        "abstract": 0,
        "libraries": 0,
        "compile_failed": 0,
        "lift_failed": 0,
        "lift_timeout": 0,
    }
    plan = plan_wrappers(result)
    if plan is None:
        return [], counts, []
    for reason, n in plan.skipped.items():
        counts[f"skipped: {reason}"] = n
    if not plan.text:
        return [], counts, []
    counts["wrapper_files"] = 1
    counts["abstract"] = len(plan.abstract)
    counts["libraries"] = len(plan.libraries)
    sources = {**result.sources, plan.path: plan.text}
    try:
        compiled = compile_job(
            sources,
            [plan.path],
            setting=result.setting,
            version=result.version,
            remappings=getattr(result, "remappings", ()) or (),
        )
    except CompileError as e:
        log.debug("wrapper of %s failed to compile: %s", result.key[:12], e)
        counts["compile_failed"] = 1
        return [], counts, []
    lifted = {}
    for art in compiled.contracts:
        if art.source_path == plan.path and art.runtime_bytecode:
            try:
                with _wall_clock_guard(2 * float(getattr(lift_config, "max_seconds", 60.0))):
                    lifted[art.name] = lift_contract(
                        art.runtime_bytecode,
                        abi=art.abi,
                        storage_layout=art.storage_layout,
                        config=lift_config,
                    )
            except Exception as e:  # a batch job records the failure and goes on
                log.debug("lifting wrapper %s failed: %s", art.name, e)
                counts["lift_timeout" if isinstance(e, LiftTimeout) else "lift_failed"] += 1
    records, pc = pair_wrappers(result, plan, compiled, lifted, packages)
    counts.update({f"pairs_{k}": v for k, v in pc.items()})
    sigs = sorted(
        {
            (s, v)
            for a in compiled.contracts
            if a.source_path == plan.path
            for s, v in a.method_identifiers.items()
        }
    )
    return records, counts, sigs


def _wrap_job(args: tuple[str, str, dict[str, str], Any, str]) -> tuple[str, str | None]:
    from evmlm.solc.stage import load_result

    compile_dir, key, packages, lift_config, shard = args
    try:
        result = load_result(Path(compile_dir), key)
        records, counts, sigs = wrap_result(result, packages, lift_config)
    except Exception as e:  # recorded, the build goes on
        log.warning("wrappers of compile result %s failed: %s", key, e)
        write_shard(Path(shard), [], {"errors": 1})
        return key, f"{type(e).__name__}: {e}"
    write_shard(Path(shard), records, counts, sigs)
    return key, None


def candidate_keys(compile_dir: Path, settings: Sequence[str]) -> list[str]:
    """Compile results that may hold abstract contracts or libraries: every successful job
    under one of ``settings`` (``compile/index.jsonl``); :func:`plan_wrappers` decides from
    the AST."""
    from evmlm.solc.stage import read_index

    return sorted(
        {
            e["key"]
            for e in read_index(compile_dir)
            if e.get("status") == "ok"
            and e.get("key")
            and e.get("contracts")
            and e.get("setting") in settings
        }
    )


def run_wrappers(
    compile_dir: Path,
    packages: Mapping[str, str],
    work: Path,
    *,
    config: DatasetConfig,
    workers: int,
    lift_config: Any = None,
) -> tuple[list[Path], dict[str, Any]]:
    """Wrap every candidate compile result (resuming from shards); return (shards, counts)."""
    shard_dir = work / "wrappers"
    shard_dir.mkdir(parents=True, exist_ok=True)
    lift_tag = hashlib.sha256(repr(lift_config).encode()).hexdigest()[:8]
    cand = candidate_keys(compile_dir, config.wrapper_settings)
    jobs, shards = [], []
    for key in cand:
        shard = (
            shard_dir
            / f"{hashlib.sha256(f'v{WRAPPER_VERSION}.{DRAFT_VERSION}:{lift_tag}:{key}'.encode()).hexdigest()[:32]}.jsonl"
        )
        shards.append(shard)
        if not shard.is_file():
            jobs.append((str(compile_dir), key, dict(packages), lift_config, str(shard)))
    failed = 0
    if jobs:
        bar = tqdm(total=len(jobs), desc="wrappers", unit="result")
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for fut in as_completed([pool.submit(_wrap_job, job) for job in jobs]):
                    failed += fut.result()[1] is not None
                    bar.update()
        else:
            for job in jobs:
                _, err = _wrap_job(job)
                failed += err is not None
                bar.update()
        bar.close()
    keep = {s.name for s in shards}
    for stale in shard_dir.glob("*.jsonl"):
        if stale.name not in keep:
            stale.unlink()
    return [s for s in shards if s.is_file()], {
        "candidates": len(cand),
        "built": len(jobs),
        "reused": len(cand) - len(jobs),
        "errors": failed,
    }
