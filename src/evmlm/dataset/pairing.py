"""Pairing: a deployed contract's selectors → the Solidity functions they were compiled from.

For each selector in a contract's ``evm.methodIdentifiers`` the most-derived *implemented*
definition is found by walking the contract's ``linearizedBaseContracts`` (C3 order, most
derived first) in the solc AST. A definition matches a selector when its AST
``functionSelector`` equals it (solc ≥ 0.6) or, for older ASTs, when its canonical ABI
signature (computed from the parameter types) equals the method identifier's signature.
Public state-variable getters are matched the same way. The function's exact source text is cut
from the file's UTF-8 bytes by the node's ``src`` (``start:length:file``, byte offsets — Solidity
docs, "JSON AST"), and its *contract context* is the source text of the state variables,
events, errors, modifiers, structs and enums it references (closed over modifiers and structs).

Works on any object with the fields of ``evmlm.solc.CompileResult`` / ``ContractArtifact``
(``sources``, ``asts``, ``contracts[*].source_path/.name/.method_identifiers``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

# Declarations that may appear in a function's contract context, in the order they are printed.
CONTEXT_KINDS: tuple[str, ...] = (
    "StructDefinition",
    "EnumDefinition",
    "VariableDeclaration",
    "EventDefinition",
    "ErrorDefinition",
    "ModifierDefinition",
)


class ArtifactLike(Protocol):
    source_path: str
    name: str
    method_identifiers: dict[str, str]


class CompileResultLike(Protocol):
    sources: dict[str, str]
    asts: dict[str, dict]
    contracts: list[Any]


@dataclass(frozen=True)
class SourceFunction:
    """One selector of a deployed contract, resolved to its Solidity definition.

    ``source_start``/``source_length`` are UTF-8 byte offsets into ``source_path``'s text;
    ``solidity`` is exactly those bytes decoded. ``kind`` is ``"function"`` or ``"getter"``
    (a public state variable). ``defining_contract`` is ``"path:Name"`` of the contract that
    holds the definition (a base of the deployed contract for inherited functions).
    ``internal_member_calls``: :func:`internal_member_calls` of ``solidity``; ``reached``: the
    internal functions and modifiers the function reaches (:meth:`AstIndex.reached`), the code
    its bytecode holds beyond its own text, each as (source text, its internal member calls).
    """

    selector: str  # "0x" + 8 hex
    signature: str  # canonical ABI signature, e.g. "transfer(address,uint256)"
    kind: str
    defining_contract: str
    source_path: str
    source_start: int
    source_length: int
    solidity: str
    visibility: str
    state_mutability: str
    contract_context: str
    internal_member_calls: tuple[int, ...] = ()
    reached: tuple[tuple[str, tuple[int, ...]], ...] = ()


@dataclass
class _Decl:
    node: dict
    path: str
    contract: str | None  # name of the enclosing contract, None at file level


class AstIndex:
    """Id → declaration index over every AST of one compile job (built once per job)."""

    def __init__(self, sources: Mapping[str, str], asts: Mapping[str, dict]) -> None:
        self.source_bytes: dict[str, bytes] = {p: t.encode("utf-8") for p, t in sources.items()}
        self.decls: dict[int, _Decl] = {}
        self.contracts: dict[tuple[str, str], dict] = {}  # (path, name) -> ContractDefinition
        for path, ast in asts.items():
            path = ast.get("absolutePath", path)
            for node in ast.get("nodes", []):
                self._index(node, path, None)

    def _index(self, node: Any, path: str, contract: str | None) -> None:
        if isinstance(node, list):
            for n in node:
                self._index(n, path, contract)
            return
        if not isinstance(node, dict):
            return
        nt = node.get("nodeType")
        if nt == "ContractDefinition":
            self.contracts[(path, node["name"])] = node
            self.decls[node["id"]] = _Decl(node, path, node["name"])
            for child in node.get("nodes", []):
                self._index(child, path, node["name"])
            return
        if nt in (
            "FunctionDefinition",
            "StructDefinition",
            "EnumDefinition",
            "EventDefinition",
            "ErrorDefinition",
            "ModifierDefinition",
            "UserDefinedValueTypeDefinition",
        ) or (nt == "VariableDeclaration" and (node.get("stateVariable") or contract is None)):
            if "id" in node:
                self.decls[node["id"]] = _Decl(node, path, contract)
        # Declarations do not nest except inside contracts (handled above).

    # ---------------------------------------------------------------- source text

    def text(self, path: str, src: str) -> tuple[int, int, str]:
        """(start, length, text) of an AST ``src`` ("start:length:file") in ``path``'s UTF-8 bytes."""
        start, length, _ = (int(x) for x in src.split(":"))
        data = self.source_bytes[path]
        return start, length, data[start : start + length].decode("utf-8", errors="replace")

    # ---------------------------------------------------------------- pairing

    def resolve(
        self, source_path: str, name: str, method_identifiers: Mapping[str, str]
    ) -> tuple[list[SourceFunction], dict[str, int]]:
        """Resolve every selector of contract ``source_path:name``.

        Returns (functions sorted by selector, counts): counts has ``resolved``, ``unresolved``
        (no implemented definition matched) and ``no_body`` (the most-derived match was an
        interface/abstract declaration without a body — excluded).
        Raises KeyError when the contract is not in the ASTs.
        """
        cdef = self.contracts[(source_path, name)]
        bases = [
            self.decls[i]
            for i in cdef.get("linearizedBaseContracts", [cdef["id"]])
            if i in self.decls
        ]
        out: list[SourceFunction] = []
        counts = {"resolved": 0, "unresolved": 0, "no_body": 0}
        for signature, sel in sorted(method_identifiers.items(), key=lambda kv: kv[1]):
            selector = "0x" + sel.lower()
            found: tuple[_Decl, dict] | None = None
            bodyless = False
            for base in bases:
                for child in base.node.get("nodes", []):
                    if not self._matches(child, signature, sel):
                        continue
                    if child.get("nodeType") == "FunctionDefinition" and not child.get(
                        "implemented", child.get("body") is not None
                    ):
                        bodyless = True
                        continue
                    found = (base, child)
                    break
                if found:
                    break
            if found is None:
                counts["no_body" if bodyless else "unresolved"] += 1
                continue
            base, node = found
            out.append(self._source_function(selector, signature, base, node, bases))
            counts["resolved"] += 1
        return out, counts

    def _matches(self, node: dict, signature: str, selector: str) -> bool:
        nt = node.get("nodeType")
        if nt == "FunctionDefinition":
            if node.get("kind", "function") != "function" or node.get("isConstructor"):
                return False
            if node.get("visibility") not in ("public", "external"):
                return False
        elif nt == "VariableDeclaration":
            if node.get("visibility") != "public" or not node.get("stateVariable", True):
                return False
        else:
            return False
        fs = node.get("functionSelector")
        if fs is not None:
            return fs.lower() == selector.lower()
        if not signature.startswith(node.get("name", "") + "("):
            return False
        canon = canonical_signature(node)
        return canon == signature if canon is not None else _arity(signature) == _node_arity(node)

    def _source_function(
        self, selector: str, signature: str, base: _Decl, node: dict, bases: list[_Decl]
    ) -> SourceFunction:
        start, length, text = self.text(base.path, node["src"])
        if node.get("nodeType") == "VariableDeclaration":
            kind, visibility, mutability = "getter", "public", "view"
        else:
            kind = "function"
            visibility = node.get("visibility", "public")
            mutability = node.get("stateMutability") or (
                "payable"
                if node.get("payable")
                else "view"
                if node.get("constant")
                else "nonpayable"
            )
        return SourceFunction(
            selector=selector,
            signature=signature,
            kind=kind,
            defining_contract=f"{base.path}:{base.contract}",
            source_path=base.path,
            source_start=start,
            source_length=length,
            solidity=text,
            visibility=visibility,
            state_mutability=mutability,
            contract_context=self.context(node),
            internal_member_calls=internal_member_calls(node),
            reached=self.reached(node, bases),
        )

    # ---------------------------------------------------------------- reached code

    def reached(
        self, node: dict, bases: list[_Decl] | None = None
    ) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """The internal functions and modifiers ``node`` reaches, transitively, each as (source
        text, :func:`internal_member_calls` of it).

        That is the code the compiler puts into the function's bytecode beyond its own text
        (inlined or jumped to; all of it is in the function's TAC). Followed: modifier
        invocations; calls by name to functions that are not ``external`` (a ``public``
        function called by name is an internal jump); ``super.f``; ``internal``/``private``
        library functions (``L.f(x)``, ``x.f()`` through ``using for``). Not followed:
        ``this.f`` and calls on other contracts (message calls), ``public``/``external``
        library functions (``DELEGATECALL``), declarations without a body. A virtual function
        or modifier called by name resolves to the most derived implementation in ``bases``
        (the deployed contract's ``linearizedBaseContracts``, most derived first; Solidity
        docs, "Inheritance"), as the compiler does. Ordered by file and offset.
        """
        bases = bases or []
        own = node.get("id")
        seen: dict[int, _Decl] = {}
        todo = [node]
        while todo:
            for ref_id, ref in _references(todo.pop()):
                d = self.decls.get(ref_id)
                if d is None or not self._followed(d, ref):
                    continue
                if ref.get("nodeType") in ("Identifier", "IdentifierPath"):
                    d = self._most_derived(d, bases)
                i = d.node.get("id")
                if i == own or i in seen or d.node.get("body") is None:
                    continue
                seen[i] = d
                todo.append(d.node)
        items = sorted((d.path, *self.text(d.path, d.node["src"]), d.node) for d in seen.values())
        return tuple((text, internal_member_calls(n)) for _, _, _, text, n in items)

    def _followed(self, d: _Decl, ref: dict) -> bool:
        nt = d.node.get("nodeType")
        if nt == "ModifierDefinition":
            return True
        if nt != "FunctionDefinition" or d.node.get("kind", "function") != "function":
            return False
        visibility = d.node.get("visibility")
        via = ref.get("nodeType")
        if via == "Identifier":
            return visibility != "external"
        if via == "MemberAccess":
            obj = ref.get("expression") or {}
            if obj.get("nodeType") == "Identifier" and obj.get("name") == "super":
                return True
            owner = self.contracts.get((d.path, d.contract or ""), {})
            return visibility in ("internal", "private") and owner.get("contractKind") == "library"
        return False

    def _most_derived(self, d: _Decl, bases: list[_Decl]) -> _Decl:
        n = d.node
        if not (n.get("virtual") or n.get("overrides")):
            return d
        nt, name, params = n.get("nodeType"), n.get("name"), _param_type_strings(n)
        for base in bases:
            for child in base.node.get("nodes", []):
                if (
                    child.get("nodeType") == nt
                    and child.get("name") == name
                    and child.get("body") is not None
                    and (nt == "ModifierDefinition" or _param_type_strings(child) == params)
                    and child.get("id") in self.decls
                ):
                    return self.decls[child["id"]]
        return d

    # ---------------------------------------------------------------- context

    def context(self, node: dict) -> str:
        """Source text of the state variables, events, errors, modifiers, structs and enums that
        ``node`` references (transitively through modifiers, structs and the types of the state
        variables it uses), one per line, grouped
        by kind in :data:`CONTEXT_KINDS` order, then by file and offset."""
        own_id = node.get("id")
        seen: set[int] = set()
        todo = list(_referenced_ids(node))
        while todo:
            i = todo.pop()
            if i in seen or i == own_id or i not in self.decls:
                continue
            d = self.decls[i]
            nt = d.node.get("nodeType")
            if nt not in CONTEXT_KINDS or (
                nt == "VariableDeclaration" and not d.node.get("stateVariable", d.contract is None)
            ):
                continue
            seen.add(i)
            if nt in ("ModifierDefinition", "StructDefinition"):
                todo.extend(_referenced_ids(d.node))
            elif nt == "VariableDeclaration":
                todo.extend(_referenced_ids(d.node.get("typeName") or {}))  # its struct/enum types
        if node.get("nodeType") == "VariableDeclaration":
            seen.discard(own_id)
        items = []
        for i in seen:
            d = self.decls[i]
            start, _, text = self.text(d.path, d.node["src"])
            if not text.rstrip().endswith((";", "}")):
                text += ";"
            items.append((CONTEXT_KINDS.index(d.node["nodeType"]), d.path, start, text))
        return "\n".join(t for *_, t in sorted(items))


#: ``typeIdentifier`` prefixes of the function types called by a message call (solc's
#: ``FunctionType::Kind``: External, DelegateCall — a public library function)
_MESSAGE_CALLS = ("t_function_external", "t_function_delegatecall")


def internal_member_calls(node: dict) -> tuple[int, ...]:
    """Byte offsets, from the start of ``node``'s source text, of the member name of every call
    ``x.f(...)`` under ``node`` that is not a message call: the callee's function type
    (``typeDescriptions.typeIdentifier``) is not external or delegatecall (without a
    ``typeIdentifier``: its ``typeString`` does not say ``external``). These are internal
    library functions through ``using for`` or by library name (``a.max(b)``,
    ``Math.max(a, b)``: inlined or jumped to), ``super.f``/``Base.f`` and builtins;
    ``token.transfer(...)``, ``this.f()`` and public library functions are message calls. The
    AST knows what the text alone cannot (:mod:`evmlm.dataset.labels`)."""
    origin = int(node["src"].split(":")[0])
    out = set()
    for n in _walk_dicts(node):
        if n.get("nodeType") != "FunctionCall":
            continue
        callee = n.get("expression") or {}
        if callee.get("nodeType") == "FunctionCallOptions":  # f{value: v}(...)
            callee = callee.get("expression") or {}
        if callee.get("nodeType") != "MemberAccess" or "src" not in callee:
            continue
        types = callee.get("typeDescriptions") or {}
        if types.get("typeIdentifier"):
            if types["typeIdentifier"].startswith(_MESSAGE_CALLS):
                continue
        elif "external" in (types.get("typeString") or "").split("returns")[0]:
            continue
        start, length, _ = (int(x) for x in callee["src"].split(":"))
        member = (callee.get("memberName") or "").encode("utf-8")
        out.add(start + length - len(member) - origin)
    return tuple(sorted(out))


def _walk_dicts(node: Any) -> Iterator[dict]:
    """Every dict under ``node`` (an AST as JSON), depth first, in key and list order."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            yield n
            stack.extend(reversed([v for v in n.values() if isinstance(v, (dict, list))]))
        elif isinstance(n, list):
            stack.extend(reversed(n))


def _references(node: Any) -> Iterator[tuple[int, dict]]:
    """(referencedDeclaration, the referencing AST node) for every reference under ``node``."""
    for n in _walk_dicts(node):
        ref = n.get("referencedDeclaration")
        if isinstance(ref, int):
            yield ref, n


def _param_type_strings(node: dict) -> tuple[str | None, ...]:
    params = (node.get("parameters") or {}).get("parameters", [])
    return tuple((p.get("typeDescriptions") or {}).get("typeString") for p in params)


def _referenced_ids(node: Any) -> Iterator[int]:
    return (ref for ref, _ in _references(node))


# ------------------------------------------------------------------- canonical ABI types
# Canonical types as in the Solidity ABI spec ("Function Selector" / "Types"): contracts are
# ``address``, enums ``uint8``, data locations dropped. Structs need their components, which
# a type string does not carry, so they yield None (the caller then matches by arity).

_LOCATION = re.compile(r"\s+(memory|storage|calldata)(\s+(pointer|ref))?")


def _canonical_type(type_string: str) -> str | None:
    t = _LOCATION.sub("", type_string).strip()
    t = t.replace("address payable", "address")
    if t.startswith("struct ") or t.startswith("function") or t.startswith("mapping"):
        return None
    t = re.sub(r"\bcontract [A-Za-z_][\w.]*", "address", t)
    t = re.sub(r"\benum [A-Za-z_][\w.]*", "uint8", t)
    t = re.sub(r"\b(uint|int)(?=\[|$)", r"\g<1>256", t)
    return t


def _param_types(node: dict) -> list[str | None]:
    params = (node.get("parameters") or {}).get("parameters", [])
    return [
        _canonical_type((p.get("typeDescriptions") or {}).get("typeString", "")) for p in params
    ]


def _getter_types(node: dict) -> list[str | None]:
    out: list[str | None] = []
    tn = node.get("typeName") or {}
    while True:
        nt = tn.get("nodeType")
        if nt == "Mapping":
            out.append(
                _canonical_type(
                    (tn.get("keyType", {}).get("typeDescriptions") or {}).get("typeString", "")
                )
            )
            tn = tn.get("valueType") or {}
        elif nt == "ArrayTypeName":
            out.append("uint256")
            tn = tn.get("baseType") or {}
        else:
            return out


def canonical_signature(node: dict) -> str | None:
    """The canonical ABI signature of a FunctionDefinition or public state variable AST node,
    or None when a parameter type cannot be written from the AST alone (structs, functions)."""
    types = (
        _getter_types(node) if node.get("nodeType") == "VariableDeclaration" else _param_types(node)
    )
    if any(t is None for t in types):
        return None
    return f"{node.get('name', '')}({','.join(t for t in types if t is not None)})"


def _node_arity(node: dict) -> int:
    return (
        len(_getter_types(node))
        if node.get("nodeType") == "VariableDeclaration"
        else len((node.get("parameters") or {}).get("parameters", []))
    )


def _arity(signature: str) -> int:
    inner = signature[signature.index("(") + 1 : -1]
    if not inner:
        return 0
    depth, n = 0, 1
    for ch in inner:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            n += 1
    return n


def resolve_contract(
    result: CompileResultLike, artifact: ArtifactLike, index: AstIndex | None = None
) -> tuple[list[SourceFunction], dict[str, int]]:
    """Resolve every selector of one contract of a compile result (see :meth:`AstIndex.resolve`)."""
    index = index or AstIndex(result.sources, result.asts)
    return index.resolve(artifact.source_path, artifact.name, artifact.method_identifiers)
