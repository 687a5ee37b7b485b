"""Does a decompiled function compile in its contract, and does it behave like the original?

Two checks, both on the function's *own contract*, never on a fragment compiled alone
(fragments fail for lack of state variables and modifiers; docs/architecture.md, "Evaluation
design"):

- **recompiles** (:func:`recompile`): the decompiled text is spliced into the original source
  file at the function's UTF-8 byte range (``source_start``, ``source_length``) and the whole
  compile job is compiled again with the same solc version and setting
  (:func:`evmlm.solc.compile_sources`); a splice that leaves the file as it was (the original
  text at its own offsets) is the job compiled before, and its artifact is used.
- **behaves the same** (:func:`evmlm.decompile.verify.compare_deployed`): the original and
  the spliced contract are each deployed in a fresh pyrevm EVM by the same deployer and the
  function is called differentially (see :mod:`evmlm.decompile.verify`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable

from evmlm.decompile.verify import compare_deployed as compare_behaviour  # noqa: F401 - the name evaluation callers use
from evmlm.evaluate.errors import SpliceError
from evmlm.evm.abi import normalise_selector

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Splice + recompile
# ---------------------------------------------------------------------------------------------


def splice_function(source: str, start: int, length: int, replacement: str) -> str:
    """``source`` with the UTF-8 byte range ``[start, start+length)`` replaced by ``replacement``.

    Offsets are solc AST ``src`` offsets (bytes, not characters). Raises
    :class:`SpliceError` when the range lies outside the file or splits a UTF-8 character.
    """
    data = source.encode("utf-8")
    if start < 0 or length < 0 or start + length > len(data):
        raise SpliceError(
            f"byte range {start}+{length} is outside the {len(data)}-byte source; check source_start/source_length"
        )
    try:
        head, tail = data[:start].decode("utf-8"), data[start + length :].decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpliceError(
            f"byte range {start}+{length} splits a UTF-8 character; offsets must be solc AST byte offsets"
        ) from e
    return head + replacement + tail


@dataclass(frozen=True)
class RecompileResult:
    """Outcome of compiling the spliced contract.

    ``ok``: solc compiled it and the contract is still there; ``error``: solc's first error (one
    line) otherwise; ``creation_bytecode``/``original_creation_bytecode``: hex without 0x (None
    when not compiled); ``abi``: the original contract's ABI; ``method_identifiers``: the
    original's (signature → 8 hex digits); ``selectors``: the recompiled contract's selectors
    (8 hex digits; from its ABI when the compiler gave no method identifiers; None when not
    compiled).
    """

    ok: bool
    error: str | None
    creation_bytecode: str | None
    original_creation_bytecode: str | None
    abi: list[Any]
    method_identifiers: dict[str, str] | None = None
    selectors: frozenset[str] | None = None


def recompile(
    original: Any,
    source_path: str,
    contract: str,
    source_start: int,
    source_length: int,
    decompiled: str,
    *,
    selector: str | None = None,
) -> RecompileResult:
    """Splice ``decompiled`` into the original compile job and compile it again.

    ``original``: the function's :class:`evmlm.solc.CompileResult` (its sources, solc version,
    setting and remappings are reused, so the job is compiled exactly as before);
    ``source_path``: the file that defines the function (for an inherited function, a base
    contract's file); ``contract``: the deployed contract, ``"path:Name"`` (or just ``Name``
    when it is in ``source_path``); ``source_start``/``source_length``: the function's UTF-8
    byte range in ``source_path``; ``selector``: finds the deployed contract when ``contract``
    names an abstract contract or library that a generated wrapper deploys (see
    :func:`deployed_contract`). Raises :class:`SpliceError` for a missing file, contract or bad offsets; a solc error in the
    spliced job is a result (``ok=False``, ``error`` = solc's first error), not an exception.
    """
    from evmlm.solc import CompileError, compile_sources

    if source_path not in original.sources:
        raise SpliceError(f"{source_path}: not among the compile job's sources; cannot splice")
    if ":" not in contract:
        contract = f"{source_path}:{contract}"
    orig = deployed_contract(original, contract, selector)
    contract_path, contract_name = orig.source_path, orig.name
    spliced_sources = dict(original.sources)
    spliced_sources[source_path] = splice_function(
        original.sources[source_path], source_start, source_length, decompiled
    )
    if spliced_sources[source_path] != original.sources[source_path]:
        spliced_sources[source_path] = _without_natspec(
            original.sources[source_path], source_start, spliced_sources[source_path]
        )
    if spliced_sources[source_path] == original.sources[source_path]:
        # the very job compiled before (the original text at its own offsets): its artifact
        return RecompileResult(
            True,
            None,
            orig.creation_bytecode,
            orig.creation_bytecode,
            list(orig.abi),
            dict(orig.method_identifiers),
            _selectors(orig),
        )
    try:
        spliced = compile_sources(
            spliced_sources,
            setting=original.setting,
            version=original.version,
            remappings=tuple(original.remappings),
        )
    except CompileError as e:
        return RecompileResult(
            False,
            (str(e).splitlines() or ["solc error"])[0],
            None,
            orig.creation_bytecode,
            list(orig.abi),
            dict(orig.method_identifiers),
        )
    new = _find_contract(spliced.contracts, contract_path, contract_name)
    if new is None:
        return RecompileResult(
            False,
            f"{contract_name} is missing from the spliced compile output",
            None,
            orig.creation_bytecode,
            list(orig.abi),
            dict(orig.method_identifiers),
        )
    return RecompileResult(
        True,
        None,
        new.creation_bytecode,
        orig.creation_bytecode,
        list(orig.abi),
        dict(orig.method_identifiers),
        _selectors(new),
    )


def _selectors(art: Any) -> frozenset[str]:
    """The contract's selectors (8 hex digits): solc's method identifiers, else (compilers that
    give none) its ABI's signatures, hashed."""
    if art.method_identifiers:
        return frozenset(v.lower() for v in art.method_identifiers.values())
    from evmlm.evm.abi import selector_of, signature_of

    return frozenset(
        f"{selector_of(signature_of(e)):08x}"
        for e in art.abi
        if e.get("type", "function") == "function"
    )


# anchored at the very end of the text before the function (``\Z``): with ``re.M`` a ``$``
# also matches at the end of any line, so a ``///`` comment anywhere above would match
_NATSPEC_BLOCK = re.compile(r"/\*\*(?:(?!\*/).)*\*/\s*\Z", re.S)
_NATSPEC_LINES = re.compile(r"(?:^[ \t]*///[^\n]*\n)+[ \t]*\Z", re.M)


def _without_natspec(source: str, start: int, spliced: str) -> str:
    """``spliced`` without the NatSpec comment right before the replaced function (bytes up to
    ``start`` of ``source``): its ``@param`` tags name the original's parameters, and solc
    rejects tags for names the new text does not have (DocstringParsingError). A comment is
    not part of the function, so dropping it changes no behaviour."""
    head = source.encode("utf-8")[:start].decode("utf-8", errors="ignore")
    m = _NATSPEC_BLOCK.search(head) or _NATSPEC_LINES.search(head)
    if m is None:
        return spliced
    return head[: m.start()] + spliced[len(head) :]


def deployed_contract(result: Any, contract: str, selector: str | None = None) -> Any:
    """The artifact in ``result`` that deploys ``contract`` (``"path:Name"``).

    The named contract itself when it has creation bytecode; else (an abstract contract or a
    library, deployed through a generated wrapper by the dataset stage) the wrapper
    ``Name__EvmlmConcrete``, else the first deployable contract whose ABI has ``selector``.
    Raises :class:`SpliceError` when there is none.
    """
    path, name = contract.rsplit(":", 1)
    found = _find_contract(result.contracts, path, name)
    if found is not None and found.creation_bytecode:
        return found
    sel = normalise_selector(selector)[2:] if selector else ""
    deployable = [c for c in result.contracts if c.creation_bytecode]
    for c in deployable:
        if c.name == f"{name}__EvmlmConcrete":
            return c
    for c in sorted(deployable, key=lambda c: (c.source_path, c.name)):
        if sel and sel in {v.lower() for v in c.method_identifiers.values()}:
            return c
    raise SpliceError(
        f"{contract}: no deployable contract for it in compile result {str(getattr(result, 'key', ''))[:12]}"
    )


def _find_contract(contracts: Iterable[Any], source_path: str, name: str) -> Any | None:
    for c in contracts:
        if c.source_path == source_path and c.name == name:
            return c
    return None
