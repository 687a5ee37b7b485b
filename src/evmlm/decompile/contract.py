"""Whole-contract checks of a decompiled ``.sol`` against the original runtime bytecode.

- :func:`compiler_for`: the solc version to compile the decompiled file with — the one the
  bytecode's CBOR metadata names (:func:`evmlm.evm.disasm.metadata_compiler_version`), else
  the nearest installed one of the same minor series, else the newest installed compiler;
- :func:`compile_runtime`: compile one file and return the named contract's runtime code;
- :func:`replace_function`: swap one function's text in a file for another's;
- :func:`verdict`: the one-line comment that marks each function in the ``.sol``
  (``// verified: same on N calls``, ``// compiles, differs: …``, ``// unverified: …``).

Behaviour is compared by :func:`evmlm.decompile.verify.compare_runtime`: the original runtime
code and the decompiled contract's runtime code each installed (empty storage) and called on
the function's selector.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from evmlm.decompile.verify import BehaviourResult

log = logging.getLogger(__name__)

SOURCE_PATH = "Decompiled.sol"


@dataclass(frozen=True)
class Compiler:
    """``version``: installed solc to compile with; ``pragma``: the file's version pragma;
    ``from_metadata``: the version the bytecode's metadata names (None when it names none)."""

    version: str
    pragma: str
    from_metadata: str | None


def compiler_for(code: bytes, fallback_pragma: str = "^0.8.0") -> Compiler:
    """The compiler for a decompiled file of runtime ``code`` (see the module docstring).

    With a metadata version the pragma is that exact version when installed, else
    ``>=major.minor.0 <major.(minor+1).0``; without one, ``fallback_pragma`` and the newest
    installed compiler satisfying it. Raises :class:`evmlm.solc.CompileError` when no solc is
    installed.
    """
    from evmlm.evm.disasm import metadata_compiler_version
    from evmlm.solc import CompileError
    from evmlm.solc.versions import installed_compilers, satisfying_versions

    installed = [c.version for c in installed_compilers()]
    if not installed:
        raise CompileError(
            "no solc installed; run scripts/setup.sh (npm install) first", reason="no compiler"
        )
    want = metadata_compiler_version(code)
    if want is not None:
        if want in installed:
            return Compiler(want, want, want)
        major, minor, patch = (int(x) for x in want.split("."))
        same_minor = [v for v in installed if v.startswith(f"{major}.{minor}.")]
        if same_minor:  # nearest patch release of the same series
            best = min(same_minor, key=lambda v: abs(int(v.split(".")[2]) - patch))
            return Compiler(best, f">={major}.{minor}.0 <{major}.{minor + 1}.0", want)
        log.info(
            "solc %s (from the metadata) is not installed and nothing of %s.%s is; using the fallback pragma",
            want,
            major,
            minor,
        )
    ok = satisfying_versions({SOURCE_PATH: [fallback_pragma]}, installed=installed)
    return Compiler(ok[0] if ok else installed[0], fallback_pragma if ok else installed[0], want)


def compile_runtime(source: str, version: str, contract_name: str) -> bytes:
    """Runtime bytecode of ``contract_name`` in ``source`` compiled by solc ``version``
    (setting ``opt200``). Raises :class:`evmlm.solc.CompileError` (solc's first error) when
    it does not compile or the contract has no runtime code."""
    from evmlm.solc import CompileError, compile_sources

    result = compile_sources({SOURCE_PATH: source}, setting="opt200", version=version)
    try:
        art = result.contract(contract_name, SOURCE_PATH)
    except Exception as e:  # the result names what it has
        raise CompileError(
            f"{contract_name} missing from the compile output: {e}", reason="missing contract"
        ) from e
    if not art.runtime_bytecode:
        raise CompileError(
            f"{contract_name} has no runtime code (abstract?)", reason="no runtime code"
        )
    return bytes.fromhex(art.runtime_bytecode)


def _indented(text: str, indent: str) -> str:
    return "\n".join(f"{indent}{ln}" if ln.strip() else "" for ln in text.strip("\n").split("\n"))


def find_function(source: str, text: str) -> tuple[int, int, str]:
    """``(start, end, indent)`` of the function text ``text`` in ``source``, found as written
    or with every line indented by 4 or 8 spaces (how a contract body holds it). Raises
    ValueError when it is not there."""
    for indent in ("", "    ", "        "):
        needle = _indented(text, indent)
        i = source.find(needle)
        if i >= 0:
            return i, i + len(needle), indent
    raise ValueError("function text not found in the contract source")


def replace_function(source: str, old: str, new: str) -> str:
    """``source`` with the first occurrence of the function text ``old`` (see
    :func:`find_function`) replaced by ``new``, indented the same. Raises ValueError when
    ``old`` is not in ``source``."""
    i, j, indent = find_function(source, old)
    return source[:i] + _indented(new, indent) + source[j:]


def verdict(result: BehaviourResult | None, error: str | None = None) -> str:
    """The marker comment of a function: ``// verified: same on N calls``,
    ``// compiles, differs: <first difference>`` or ``// unverified: <why>``."""
    if error is not None:
        return f"// unverified: {error}"
    if result is None:
        return "// unverified: not checked"
    if result.same is True:
        return f"// verified: same on {result.n_calls} calls"
    if result.same is False:
        return f"// compiles, differs: {result.first_difference}"
    return f"// unverified: {result.first_difference or 'undetermined'}"
