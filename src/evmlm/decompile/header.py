"""The function header that generation does not choose: it is forced as the completion's start.

Name and parameter types come from the resolved signature (the ABI, the signature database or
the lifter's), visibility and mutability from the ABI / the dataset record / evmole, return
types from the ABI's ``outputs`` (or the structural draft's header, which reads them from the
return encoding). The model continues after the header: the body (and modifiers). Parameter
names come from the ABI when it names them, else ``arg0, arg1, ...`` (the names the lifter
gives calldata arguments, so TAC, draft and header agree).

A header cannot be written for a parameter of tuple type (its struct has no name in an ABI):
:func:`function_header` returns None and the model writes the whole function.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from evmlm.evm.abi import signature_types

_VALUE_TYPE = re.compile(r"(u?int\d*|address|bool|bytes\d+)")
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_MUTABILITY = {"view": " view", "pure": " pure", "payable": " payable", "nonpayable": ""}


def _param(t: str, name: str, location: str) -> str | None:
    if t.startswith("("):
        return None
    loc = "" if _VALUE_TYPE.fullmatch(t) else f" {location}"
    return f"{t}{loc}{' ' + name if name else ''}"


def function_header(
    signature: str | None,
    *,
    visibility: str = "external",
    mutability: str = "nonpayable",
    outputs: Sequence[Mapping[str, Any] | str] | None = None,
    param_names: Sequence[str] | None = None,
) -> str | None:
    """``function name(T0 arg0, ...) <visibility>[ mutability][ returns (...)]`` for
    ``signature`` (``name(T0,T1)``), or None when the signature is missing or has a tuple
    parameter or return. ``outputs``: ABI output entries or type strings (None: no returns);
    ``param_names``: names per parameter (missing or invalid ones become ``argN``). Reference
    types get ``calldata`` (external) or ``memory`` (public) in parameters, ``memory`` in
    returns.
    """
    types = signature_types(signature)
    if types is None or not signature or not _IDENT.fullmatch(signature.split("(", 1)[0]):
        return None
    name = signature.split("(", 1)[0]
    location = "calldata" if visibility == "external" else "memory"
    params = []
    for i, t in enumerate(types):
        given = (param_names or [])[i] if i < len(param_names or []) else ""
        p = _param(t, given if given and _IDENT.fullmatch(given) else f"arg{i}", location)
        if p is None:
            return None
        params.append(p)
    rets = []
    for o in outputs or []:
        t = o if isinstance(o, str) else _abi_type(o)
        r = _param(t, "", "memory")
        if r is None:
            return None
        rets.append(r)
    head = f"function {name}({', '.join(params)}) {visibility}{_MUTABILITY.get(mutability, '')}"
    return head + (f" returns ({', '.join(rets)})" if rets else "")


def _abi_type(p: Mapping[str, Any]) -> str:
    t = str(p.get("type", ""))
    return "(" + t + ")" if t.startswith("tuple") else t


def header_of(text: str) -> str | None:
    """The header of a function definition's text: everything before its body's ``{``
    (comments before ``function`` dropped), or None when ``text`` holds no function with a body.
    Used to force the structural draft's header when the ABI does not give one."""
    from evmlm.decompile.syntax import solidity_parser

    data = text.encode("utf-8")
    stack = [solidity_parser().parse(b"contract __C {\n" + data + b"\n}").root_node]
    offset = len(b"contract __C {\n")
    while stack:
        n = stack.pop()
        if n.type == "function_definition":
            body = next((c for c in n.children if c.type == "function_body"), None)
            if body is None:
                return None
            return data[n.start_byte - offset : body.start_byte - offset].decode("utf-8").strip()
        stack.extend(reversed(n.children))
    return None


def abi_function(
    abi: Sequence[Mapping[str, Any]] | None, selector: str | None
) -> Mapping[str, Any] | None:
    """The ABI entry of ``selector`` (``0x`` + 8 hex digits), or None."""
    if not abi or not selector:
        return None
    from evmlm.decompile.verify import function_entry

    return function_entry(abi, selector)


def header_for(
    signature: str | None,
    *,
    abi: Sequence[Mapping[str, Any]] | None = None,
    selector: str | None = None,
    visibility: str | None = None,
    mutability: str | None = None,
    draft: str | None = None,
) -> str | None:
    """The forced header of one function, from what is known, best source first: the ABI entry
    of ``selector`` (names, mutability, outputs), else the structural ``draft``'s header, else
    the ``signature`` with ``visibility`` / ``mutability`` (no returns). None when nothing gives
    a header (see :func:`function_header`)."""
    entry = abi_function(abi, selector)
    vis = visibility if visibility in ("public", "external") else "external"
    if entry is not None:
        mut = str(entry.get("stateMutability") or mutability or "nonpayable")
        names = [str(p.get("name") or "") for p in entry.get("inputs", [])]
        return function_header(
            signature,
            visibility=vis,
            mutability=mut,
            outputs=list(entry.get("outputs") or []),
            param_names=names,
        )
    if draft:
        h = header_of(draft)
        if h:
            return h
    return function_header(signature, visibility=vis, mutability=mutability or "nonpayable")
