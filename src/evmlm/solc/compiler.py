"""Compile Solidity through standard JSON: results, artifacts, the content-addressed cache.

:func:`compile_sources` is the one entry point other parts use: give it sources (path -> text),
it resolves missing imports from the bundled corpus, picks the newest installed solc that
satisfies every pragma, compiles with warm worker processes and returns a :class:`CompileResult`.
Results (and failures) are cached under ``.cache/evmlm/compile/`` (``EVMLM_CACHE_DIR``
overrides) keyed by the SHA-256 of compiler version, setting, remappings, targets and sources,
so the same job never runs twice.

Library placeholders in bytecode (``__$<34 hex>$__``, or ``__Name____`` before 0.5) are linked to
the zero address so every bytecode string is plain hex.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from evmlm import atomic
from evmlm.corpus.imports import OUTSIDE, ImportResolver, outside_message
from evmlm.corpus.packages import CorpusError, Package, npm_packages
from evmlm.errors import EvmlmError
from evmlm.solc.driver import CompilerPool, CompilerUnavailableError, default_pool
from evmlm.solc.settings import CompileSetting, get_setting, supports
from evmlm.solc.versions import (
    PragmaError,
    compatible_pragmas,
    pragmas,
    resolve_version,
    satisfying_versions,
)

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
_PLACEHOLDER = re.compile(r"__.{36}__")
CONTRACT_OUTPUTS = [
    "abi",
    "evm.bytecode.object",
    "evm.deployedBytecode.object",
    "evm.deployedBytecode.sourceMap",
    "evm.deployedBytecode.functionDebugData",
    "evm.methodIdentifiers",
    "storageLayout",
]


class CompileError(EvmlmError):
    """solc rejected a job (or it could not run). ``reason`` is a short class for summaries
    (``TypeError``, ``ParserError``, ``missing import``, ``no compiler``, ...); the message names the
    file and gives solc's first error."""

    def __init__(self, message: str, *, reason: str = "error", key: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.key = key


class UnsupportedSettingError(CompileError):
    """The resolved compiler cannot use the requested setting (via-IR before 0.8.13)."""


@dataclass
class ContractArtifact:
    """One compiled contract. Bytecode is hex without ``0x``; ``method_identifiers`` maps
    signature -> 8-hex selector; ``source_map`` is the runtime (deployed) source map
    (solc docs "Source Mappings"); ``function_debug_data`` is ``evm.deployedBytecode.functionDebugData``
    (empty before solc 0.8.2); ``storage_layout`` is None before solc 0.5.13."""

    source_path: str
    name: str
    abi: list
    method_identifiers: dict[str, str]
    creation_bytecode: str
    runtime_bytecode: str
    source_map: str
    function_debug_data: dict
    storage_layout: dict | None

    @property
    def deployable(self) -> bool:
        return bool(self.runtime_bytecode)


@dataclass
class CompileResult:
    """The outcome of one successful compile job. ``key``: the content hash (cache key);
    ``sources``: path -> text of every source in the job; ``asts``: path -> solc AST;
    ``errors``: solc's warnings (formatted, first line each); ``remappings``: solc remappings
    used (pass them back to :func:`compile_sources` with ``sources`` to compile the job again);
    ``targets``: the paths whose contracts were compiled; ``source_ids``: path -> solc source unit
    id, the file index used in ``source_map`` and in AST ``src`` fields. AST ids and source ids
    are those of the compiler run that produced the result (the compile stage compiles several
    files of one package in one run, see :func:`compile_batch`), so always map through these
    fields, never through the order of ``sources``."""

    key: str
    version: str
    setting: CompileSetting
    sources: dict[str, str]
    asts: dict[str, dict]
    contracts: list[ContractArtifact]
    errors: list[str] = field(default_factory=list)
    remappings: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    source_ids: dict[str, int] = field(default_factory=dict)

    def contract(self, name: str, source_path: str | None = None) -> ContractArtifact:
        """The contract called ``name`` (in ``source_path`` when given). Raises KeyError."""
        for c in self.contracts:
            if c.name == name and (source_path is None or c.source_path == source_path):
                return c
        raise KeyError(
            f"{name} not in compile result {self.key[:12]} ({', '.join(c.name for c in self.contracts)})"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain-data form (shares the AST dicts, no deep copy: ASTs are large)."""
        return {
            "key": self.key,
            "version": self.version,
            "setting": self.setting.as_dict(),
            "sources": self.sources,
            "asts": self.asts,
            "contracts": [dict(vars(c)) for c in self.contracts],
            "errors": self.errors,
            "remappings": self.remappings,
            "targets": self.targets,
            "source_ids": self.source_ids,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "CompileResult":
        return cls(
            key=d["key"],
            version=d["version"],
            setting=CompileSetting(**d["setting"]),
            sources=dict(d["sources"]),
            asts=dict(d["asts"]),
            contracts=[ContractArtifact(**c) for c in d["contracts"]],
            errors=list(d.get("errors", [])),
            remappings=list(d.get("remappings", [])),
            targets=list(d.get("targets", [])),
            source_ids={k: int(v) for k, v in (d.get("source_ids") or {}).items()},
        )


# ------------------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    env = os.environ.get("EVMLM_CACHE_DIR")
    return Path(env) / "compile" if env else Path(".cache") / "evmlm" / "compile"


def job_key(
    version: str,
    setting: CompileSetting,
    sources: Mapping[str, str],
    remappings: Sequence[str],
    targets: Sequence[str],
) -> str:
    """SHA-256 over everything that determines solc's output."""
    h = hashlib.sha256()
    head = {
        "format": CACHE_FORMAT,
        "version": version,
        "setting": setting.as_dict() | {"name": ""},
        "remappings": sorted(remappings),
        "targets": sorted(targets),
    }
    h.update(json.dumps(head, sort_keys=True).encode())
    for path in sorted(sources):
        h.update(
            b"\0" + path.encode() + b"\0" + hashlib.sha256(sources[path].encode("utf-8")).digest()
        )
    return h.hexdigest()


def cache_path(key: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / key[:2] / f"{key}.json.gz"


def _cache_get(key: str) -> dict | None:
    p = cache_path(key)
    if not p.is_file():
        return None
    try:
        with gzip.open(p, "rt", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError, EOFError):
        log.warning("compile cache entry %s unreadable; recompiling", p)
        return None


def _cache_put(key: str, record: dict) -> None:
    data = gzip.compress(json.dumps(record, separators=(",", ":")).encode("utf-8"), compresslevel=1)
    atomic.write_bytes(cache_path(key), data)


# ------------------------------------------------------------------------------------- compile


def _link(code: str) -> str:
    return _PLACEHOLDER.sub("0" * 40, code or "")


def standard_input(
    sources: Mapping[str, str],
    setting: CompileSetting,
    remappings: Sequence[str],
    targets: Sequence[str],
) -> str:
    """The standard-JSON input string: bytecode outputs for ``targets``' contracts, AST for every source."""
    selection: dict[str, Any] = {"*": {"": ["ast"]}}
    for t in targets:
        selection[t] = {"": ["ast"], "*": CONTRACT_OUTPUTS}
    settings = setting.standard_json() | {"outputSelection": selection}
    if remappings:
        settings["remappings"] = list(remappings)
    return json.dumps(
        {
            "language": "Solidity",
            "sources": {p: {"content": t} for p, t in sources.items()},
            "settings": settings,
        }
    )


def _first_line(msg: str) -> str:
    return (msg or "").strip().splitlines()[0] if (msg or "").strip() else ""


def _where(err: Mapping[str, Any], sources: Mapping[str, str], targets: Sequence[str]) -> str:
    """``file:line:column`` of a solc error (1-based; solc's ``start`` is a UTF-8 byte offset)."""
    loc = err.get("sourceLocation") or {}
    path = loc.get("file") or (targets[0] if targets else "?")
    start = loc.get("start")
    text = sources.get(path)
    if text is None or not isinstance(start, int) or start < 0:
        return path
    before = text.encode("utf-8")[:start].decode("utf-8", errors="replace")
    return f"{path}:{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"


def _snippet(err: Mapping[str, Any], sources: Mapping[str, str]) -> str:
    loc = err.get("sourceLocation") or {}
    text = sources.get(loc.get("file") or "")
    start, end = loc.get("start"), loc.get("end")
    if (
        text is None
        or not isinstance(start, int)
        or not isinstance(end, int)
        or start < 0
        or end <= start
    ):
        return ""
    frag = " ".join(text.encode("utf-8")[start:end].decode("utf-8", errors="replace").split())
    return f" [{frag[:80]}{'...' if len(frag) > 80 else ''}]"


def _reason(err: Mapping[str, Any]) -> str:
    msg = str(err.get("message", ""))
    typ = str(err.get("type", "error"))
    low = msg.lower()
    if "stack too deep" in low:
        return "stack too deep"
    if "not found" in low and ("source" in low or "file" in low):
        return "missing import"
    return typ


def _load_output(raw: str, version: str, first: str, key: str | None) -> dict[str, Any]:
    try:
        out = json.loads(raw) if raw else {}
    except ValueError as e:
        raise CompileError(
            f"{first}: solc {version} returned invalid JSON ({e})", reason="compiler crash", key=key
        ) from e
    return out


def _fatal(out: Mapping[str, Any]) -> list[dict[str, Any]]:
    errs = [e for e in (out.get("errors") or []) if e.get("severity") == "error"]
    if not out:
        errs = [{"message": "no output", "type": "CompilerCrash"}]
    return errs


def _raise_fatal(
    e0: Mapping[str, Any],
    *,
    version: str,
    sources: Mapping[str, str],
    targets: Sequence[str],
    key: str | None,
) -> None:
    raise CompileError(
        f"{_where(e0, sources, targets)}: solc {version}: {_first_line(e0.get('formattedMessage') or e0.get('message', ''))}{_snippet(e0, sources)}",
        reason=_reason(e0),
        key=key,
    )


def _result(
    out: Mapping[str, Any],
    *,
    key: str,
    version: str,
    setting: CompileSetting,
    sources: Mapping[str, str],
    remappings: Sequence[str],
    targets: Sequence[str],
) -> CompileResult:
    """The part of a (possibly larger) solc output that belongs to one job."""
    warnings = [
        _first_line(e.get("formattedMessage") or e.get("message", ""))
        for e in (out.get("errors") or [])
        if e.get("severity") != "error"
        and ((e.get("sourceLocation") or {}).get("file") in sources or not e.get("sourceLocation"))
    ]
    asts: dict[str, dict] = {}
    ids: dict[str, int] = {}
    for path, s in (out.get("sources") or {}).items():
        if path not in sources:
            continue
        ast = s.get("ast") or s.get("legacyAST")
        if ast is not None:
            asts[path] = ast
        if isinstance(s.get("id"), int):
            ids[path] = s["id"]
    contracts = []
    for path in targets:
        for name, c in sorted((out.get("contracts") or {}).get(path, {}).items()):
            evm = c.get("evm") or {}
            dep = evm.get("deployedBytecode") or {}
            contracts.append(
                ContractArtifact(
                    source_path=path,
                    name=name,
                    abi=c.get("abi") or [],
                    method_identifiers=dict(evm.get("methodIdentifiers") or {}),
                    creation_bytecode=_link((evm.get("bytecode") or {}).get("object", "")),
                    runtime_bytecode=_link(dep.get("object", "")),
                    source_map=dep.get("sourceMap", "") or "",
                    function_debug_data=dict(dep.get("functionDebugData") or {}),
                    storage_layout=c.get("storageLayout"),
                )
            )
    return CompileResult(
        key=key,
        version=version,
        setting=setting,
        sources=dict(sources),
        asts=asts,
        contracts=contracts,
        errors=warnings[:50],
        remappings=list(remappings),
        targets=list(targets),
        source_ids=ids,
    )


def parse_output(
    raw: str,
    *,
    key: str,
    version: str,
    setting: CompileSetting,
    sources: Mapping[str, str],
    remappings: Sequence[str],
    targets: Sequence[str],
) -> CompileResult:
    """Turn solc's standard-JSON output into a CompileResult. Raises CompileError on solc errors."""
    out = _load_output(raw, version, targets[0] if targets else "?", key)
    fatal = _fatal(out)
    if fatal:
        _raise_fatal(fatal[0], version=version, sources=sources, targets=targets, key=key)
    return _result(
        out,
        key=key,
        version=version,
        setting=setting,
        sources=sources,
        remappings=remappings,
        targets=targets,
    )


def choose_version(sources: Mapping[str, str]) -> str:
    """Newest installed solc satisfying every pragma in ``sources``. Raises PragmaError."""
    return resolve_version({p: pragmas(t) for p, t in sources.items()})


def allowed_versions(sources: Mapping[str, str]) -> list[str]:
    """Every installed solc satisfying every pragma in ``sources``, newest first (may be empty)."""
    return satisfying_versions({p: pragmas(t) for p, t in sources.items()})


def compile_job(
    sources: Mapping[str, str],
    targets: Sequence[str],
    *,
    setting: CompileSetting | str = "opt200",
    version: str | None = None,
    remappings: Sequence[str] = (),
    missing: Sequence[str] = (),
    pool: CompilerPool | None = None,
    timeout_s: float = 300.0,
    use_cache: bool = True,
) -> CompileResult:
    """Compile a fully resolved job (all sources present). Cached by content.

    Raises CompileError (solc errors, missing imports, no matching compiler, crash/timeout;
    failures are cached too, except crashes and timeouts) and UnsupportedSettingError.
    """
    setting = get_setting(setting)
    first = targets[0] if targets else next(iter(sources), "?")
    if version is None:
        try:
            version = choose_version(sources)
        except PragmaError as e:
            raise CompileError(
                str(e), reason="no compiler" if "no installed" in str(e) else "conflicting pragmas"
            ) from e
    if not supports(setting, version):
        raise UnsupportedSettingError(
            f"{first}: setting {setting.name} needs solc >= 0.8.13 (resolved {version})",
            reason="unsupported setting",
        )
    if missing:
        raise CompileError(
            f"{missing[0].split(': ', 1)[0]}: import {missing[0].split(': ', 1)[-1]!r} not found in the sources or the bundled corpus",
            reason="missing import",
        )
    key = job_key(version, setting, sources, remappings, targets)
    if use_cache:
        rec = _cache_get(key)
        if rec is not None:
            if rec.get("ok"):
                r = CompileResult.from_json(rec["result"])
                r.setting = setting
                return r
            raise CompileError(rec["message"], reason=rec.get("reason", "error"), key=key)
    inp = standard_input(sources, setting, remappings, targets)
    try:
        raw = (pool or default_pool()).compile(version, inp, timeout_s)
    except CompilerUnavailableError as e:
        raise CompileError(f"{first}: {e}", reason="compiler crash/timeout", key=key) from e
    try:
        result = parse_output(
            raw,
            key=key,
            version=version,
            setting=setting,
            sources=sources,
            remappings=remappings,
            targets=targets,
        )
    except CompileError as e:
        if use_cache and e.reason != "compiler crash":
            _cache_put(key, {"ok": False, "message": str(e), "reason": e.reason})
        raise
    if use_cache:
        _cache_put(key, {"ok": True, "result": result.to_json()})
    return result


@dataclass(frozen=True)
class JobSpec:
    """One per-file job of a batch: its sources (file + imports), targets and remappings."""

    sources: Mapping[str, str]
    targets: tuple[str, ...]
    remappings: tuple[str, ...] = ()


def compile_batch(
    jobs: Sequence[JobSpec],
    *,
    setting: CompileSetting | str,
    version: str,
    pool: CompilerPool | None = None,
    timeout_s: float = 300.0,
    use_cache: bool = True,
    _depth: int = 0,
) -> list[CompileResult | CompileError]:
    """Compile several per-file jobs (same compiler, compatible remappings) in one solc run.

    Each job's result is what :func:`compile_job` would return for it (same key, bytecode,
    ABI; AST ids and source ids are those of the shared run) and is cached under its own key.
    When the shared run fails, the jobs that contain the failing file are compiled one by one
    (so a failure stays with its file) and the others are batched again (up to 3 rounds).
    Returns one CompileResult or CompileError per job, in order.
    """
    setting = get_setting(setting)
    out: list[CompileResult | CompileError | None] = [None] * len(jobs)
    keys = [job_key(version, setting, j.sources, j.remappings, j.targets) for j in jobs]
    todo: list[int] = []
    for i, (j, k) in enumerate(zip(jobs, keys)):
        if not supports(setting, version):
            out[i] = UnsupportedSettingError(
                f"{j.targets[0]}: setting {setting.name} needs solc >= 0.8.13 (resolved {version})",
                reason="unsupported setting",
            )
            continue
        rec = _cache_get(k) if use_cache else None
        if rec is None:
            todo.append(i)
        elif rec.get("ok"):
            r = CompileResult.from_json(rec["result"])
            r.setting = setting
            out[i] = r
        else:
            out[i] = CompileError(rec["message"], reason=rec.get("reason", "error"), key=k)

    def single(i: int) -> None:
        j = jobs[i]
        try:
            out[i] = compile_job(
                j.sources,
                j.targets,
                setting=setting,
                version=version,
                remappings=j.remappings,
                pool=pool,
                timeout_s=timeout_s,
                use_cache=use_cache,
            )
        except CompileError as e:
            out[i] = e

    if len(todo) == 1 or (todo and _depth >= 3):
        for i in todo:
            single(i)
        todo = []
    if todo:
        sources: dict[str, str] = {}
        remaps: list[str] = []
        targets: list[str] = []
        for i in todo:
            sources.update(jobs[i].sources)
            remaps.extend(r for r in jobs[i].remappings if r not in remaps)
            targets.extend(jobs[i].targets)
        inp = standard_input(sources, setting, remaps, targets)
        try:
            raw = (pool or default_pool()).compile(version, inp, timeout_s * max(1, len(todo) // 4))
            parsed: dict[str, Any] | None = _load_output(raw, version, targets[0], None)
        except (CompilerUnavailableError, CompileError):
            parsed = None
        fatal = _fatal(parsed) if parsed is not None else [{}]
        if not fatal:
            for i in todo:
                j = jobs[i]
                r = _result(
                    parsed,
                    key=keys[i],
                    version=version,
                    setting=setting,
                    sources=j.sources,
                    remappings=j.remappings,
                    targets=j.targets,
                )
                if use_cache:
                    _cache_put(keys[i], {"ok": True, "result": r.to_json()})
                out[i] = r
        else:
            bad_files = {(e.get("sourceLocation") or {}).get("file") for e in fatal}
            suspects = [
                i for i in todo if None in bad_files or any(f in jobs[i].sources for f in bad_files)
            ]
            rest = [i for i in todo if i not in suspects]
            for i in suspects:
                single(i)
            if rest:
                again = compile_batch(
                    [jobs[i] for i in rest],
                    setting=setting,
                    version=version,
                    pool=pool,
                    timeout_s=timeout_s,
                    use_cache=use_cache,
                    _depth=_depth + 1,
                )
                for i, r in zip(rest, again):
                    out[i] = r
    return [
        r
        if r is not None
        else CompileError(f"{jobs[i].targets[0]}: not compiled", reason="internal")
        for i, r in enumerate(out)
    ]


def compile_sources(
    sources: Mapping[str, str],
    *,
    setting: CompileSetting | str = "opt200",
    version: str | None = None,
    remappings: Sequence[str] = (),
    timeout_s: float = 300.0,
) -> CompileResult:
    """Compile ``sources`` (path -> Solidity text); every contract in them is output.

    Imports not among ``sources`` are taken from the bundled corpus (package.json
    ``evmlmCorpus``; an undeclared package name means its newest corpus version).
    ``version``: None = the newest installed solc satisfying all pragmas (of ``sources`` and
    their imports). ``remappings``: solc remappings (``[context:]prefix=target``), e.g. a
    previous ``CompileResult.remappings``. Uses warm worker processes and the compile cache.

    Raises CompileError naming the file and solc's first error (also for missing imports and
    unsatisfiable pragmas), UnknownSettingError for a bad setting name.
    """
    if not sources:
        raise CompileError(
            "compile_sources: no sources given; pass a mapping path -> Solidity text",
            reason="no sources",
        )
    try:
        universe = list(npm_packages())
    except CorpusError:
        universe = []
    files = dict(sources)
    if not remappings:
        remappings = _derive_remappings(files, {p.name for p in universe})
    root = Package(name="", version="0", files=files, source="memory")
    job = ImportResolver([root, *universe], compatible=compatible_pragmas).job(
        root, sorted(files), remappings=remappings
    )
    if job.outside:
        raise CompileError(outside_message(job.outside[0]), reason=OUTSIDE)
    return compile_job(
        job.sources,
        job.targets,
        setting=setting,
        version=version,
        remappings=job.remappings,
        missing=job.missing,
        timeout_s=timeout_s,
    )


def _derive_remappings(files: Mapping[str, str], names: set[str]) -> list[str]:
    """``name/=name@version/`` for each package that ``files`` holds under exactly one versioned prefix."""
    seen: dict[str, set[str]] = {}
    for path in files:
        for name in names:
            if path.startswith(name + "@"):
                ver = path[len(name) + 1 :].split("/", 1)[0]
                seen.setdefault(name, set()).add(ver)
    return [f"{n}/={n}@{next(iter(v))}/" for n, v in sorted(seen.items()) if len(v) == 1]
