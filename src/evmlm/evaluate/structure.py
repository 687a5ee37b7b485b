"""Solidity-aware metrics from tree-sitter parses: structure F1, facts, strict signature match.

A function's text (a bare ``function ... { ... }``, which tree-sitter-solidity parses as a
free function) is parsed once into a :class:`FunctionFacts`:

- ``structure``: a multiset of statement / control-flow kinds — ``if``, ``for``, ``while``,
  ``do``, ``require``, ``assert``, ``revert``, ``emit``, ``return``, ``assign`` (plain,
  compound, ``++``/``--``, ``delete``, initialised local declarations), ``call`` (any other call),
  ``try``, ``assembly``, ``unchecked``, ``ternary``. Structural preservation is the multiset F1
  of the two functions' structures.
- ``facts``: a multiset of observable effects, each ``kind:name`` with kind in
  :data:`FACT_KINDS` — ``call:<member>`` (member calls ``x.f(...)`` other than ABI / array /
  bytes builtins, plus low-level ``call``/``delegatecall``/``staticcall``/``transfer``/``send``:
  calls that may leave the contract), ``write:<root variable>`` (assignments whose root
  variable is not a parameter or local: storage writes), ``event:<Name>`` (``emit``),
  ``guard:<require|assert|revert|modifier name>``, ``return:<n values>``. Precision and recall
  are multiset overlaps; they catch hallucinated calls and writes (docs/architecture.md,
  "Evaluation design").
- ``signature``: the normalised ABI-style signature ``name(type,...)`` (``uint`` → ``uint256``,
  ``int`` → ``int256``, ``byte`` → ``bytes1``, data locations, ``payable`` and parameter names
  dropped). Struct, enum and contract types keep their source name (they are compared
  between two parses, never against a solc ABI string).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from evmlm.decompile.syntax import solidity_parser
from evmlm.evm.abi import split_types

FACT_KINDS = ("call", "write", "event", "guard", "return")

# Member names that are builtins, not external calls (ABI coding, arrays, bytes/strings, types).
_BUILTIN_MEMBERS = frozenset(
    "encode encodePacked encodeWithSelector encodeWithSignature encodeCall decode push pop concat "
    "selector length wrap unwrap toString max min".split()
)
_LOW_LEVEL = frozenset({"call", "delegatecall", "staticcall", "transfer", "send"})
_ELEMENTARY_ALIASES = {
    "uint": "uint256",
    "int": "int256",
    "byte": "bytes1",
    "ufixed": "ufixed128x18",
    "fixed": "fixed128x18",
}


_parser = solidity_parser


@dataclass(frozen=True)
class FunctionFacts:
    """What one parse of a function's text yields (see the module docstring).

    ``parsed``: a ``function_definition`` was found; ``has_error``: tree-sitter reported a
    syntax error somewhere in the text.
    """

    parsed: bool
    has_error: bool
    signature: str | None
    structure: Counter[str] = field(default_factory=Counter)
    facts: Counter[str] = field(default_factory=Counter)


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "replace")


def _walk(node: Any) -> Iterable[Any]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _callee(call: Any) -> Any | None:
    """The callee expression of a call_expression (unwrapping ``expression`` and ``{value: ..}``)."""
    for c in call.children:
        if c.type in ("(", "call_argument"):
            break
        node = c
        while (
            node.type in ("expression", "struct_expression", "parenthesized_expression")
            and node.named_children
        ):
            node = node.named_children[0]
        return node
    return None


def _root_identifier(node: Any) -> str | None:
    """Root variable of an lvalue: ``a.b[c].d`` → ``a``; ``(a, b)`` → None (tuples handled by caller)."""
    while True:
        if node.type == "identifier":
            return _text(node)
        if node.type in ("expression", "parenthesized_expression") and node.named_children:
            node = node.named_children[0]
        elif (
            node.type in ("array_access", "member_expression", "slice_access")
            and node.named_children
        ):
            node = node.named_children[0]
        else:
            return None


def _lvalues(node: Any) -> list[str]:
    """Root names assigned by the left side ``node`` (tuples give several)."""
    inner = node
    while (
        inner.type in ("expression", "parenthesized_expression") and len(inner.named_children) == 1
    ):
        inner = inner.named_children[0]
    if inner.type in ("tuple_expression", "inline_array_expression"):
        out = []
        for c in inner.named_children:
            out.extend(_lvalues(c))
        return out
    root = _root_identifier(inner)
    return [root] if root else []


def canonical_type(type_text: str) -> str:
    """ABI-style spelling of a Solidity type: ``uint`` → ``uint256``, locations and ``payable`` dropped.

    ``"uint[] memory"`` → ``"uint256[]"``; ``"address payable"`` → ``"address"``.
    """
    t = re.sub(r"\b(memory|calldata|storage|payable|indexed)\b", " ", type_text)
    t = re.sub(r"\s+", "", t)
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_.]*)(.*)$", t)
    if not m:
        return t
    base, rest = m.groups()
    return _ELEMENTARY_ALIASES.get(base, base) + rest


def normalise_signature(signature: str) -> str:
    """Normalise a text signature ``name(type a, ...)`` to ``name(canonical,...)`` (no spaces)."""
    m = re.match(r"^\s*(?:function\s+)?([A-Za-z_$][A-Za-z0-9_$]*)\s*\((.*)\)\s*$", signature, re.S)
    if not m:
        return re.sub(r"\s+", "", signature)
    name, params = m.groups()
    types = []
    for p in split_types(params):
        if p.startswith("tuple(") or p.startswith("("):
            types.append(re.sub(r"\s+", "", p))
            continue
        words = p.split()
        # drop a trailing parameter name (an identifier that is not a location/keyword)
        if (
            len(words) >= 2
            and re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", words[-1])
            and words[-1] not in ("memory", "calldata", "storage", "payable")
        ):
            words = words[:-1]
        types.append(canonical_type(" ".join(words)))
    return f"{name}({','.join(types)})"


def analyse_function(code: str) -> FunctionFacts:
    """Parse ``code`` (one function's text, or text containing one) into :class:`FunctionFacts`.

    The first ``function_definition`` (or ``fallback``/``receive``/``constructor``) found is
    analysed; text without one gives ``parsed=False`` and empty multisets. Never raises on bad
    Solidity: a syntax error sets ``has_error`` and whatever parsed is still counted.
    """
    tree = _parser().parse(code.encode("utf-8"))
    root = tree.root_node
    fn = next(
        (
            n
            for n in _walk(root)
            if n.type
            in ("function_definition", "fallback_receive_definition", "constructor_definition")
        ),
        None,
    )
    if fn is None:
        var = next((n for n in _walk(root) if n.type == "state_variable_declaration"), None)
        if var is None:
            # solc's src of a state variable excludes its ';' (how the dataset stores getters)
            var = next(
                (
                    n
                    for n in _walk(
                        _parser()
                        .parse(f"contract __C {{ {code.strip()}; }}".encode("utf-8"))
                        .root_node
                    )
                    if n.type == "state_variable_declaration"
                ),
                None,
            )
        return FunctionFacts(
            parsed=var is not None,
            has_error=root.has_error,
            signature=_getter_signature(var) if var is not None else None,
        )

    # header: name, parameter types, modifiers, return arity
    name = None
    param_types: list[str] = []
    locals_: set[str] = set()
    structure: Counter[str] = Counter()
    facts: Counter[str] = Counter()
    for c in fn.children:
        if c.type == "identifier" and name is None:
            name = _text(c)
        elif c.type == "parameter":
            tn = c.child_by_field_name("type") or next(
                (x for x in c.children if x.type == "type_name"), None
            )
            param_types.append(canonical_type(_text(tn)) if tn is not None else "?")
            for x in c.children:
                if x.type == "identifier":
                    locals_.add(_text(x))
        elif c.type == "return_type_definition":
            for p in c.children:
                if p.type == "parameter":
                    for x in p.children:
                        if x.type == "identifier":
                            locals_.add(_text(x))
        elif c.type == "modifier_invocation":
            ident = next((x for x in c.children if x.type == "identifier"), None)
            if ident is not None:
                facts[f"guard:{_text(ident)}"] += 1
    signature = f"{name}({','.join(param_types)})" if name else None

    body = next((c for c in fn.children if c.type == "function_body"), None)
    if body is not None:
        for n in _walk(body):  # locals first, so writes to them are not storage writes
            if n.type == "variable_declaration":
                for x in n.children:
                    if x.type == "identifier":
                        locals_.add(_text(x))
        for n in _walk(body):
            t = n.type
            if t == "if_statement":
                structure["if"] += 1
            elif t == "for_statement":
                structure["for"] += 1
            elif t == "while_statement":
                structure["while"] += 1
            elif t == "do_while_statement":
                structure["do"] += 1
            elif t == "try_statement":
                structure["try"] += 1
            elif t == "assembly_statement":
                structure["assembly"] += 1
            elif t == "ternary_expression":
                structure["ternary"] += 1
            elif t == "block_statement" and n.children and n.children[0].type == "unchecked":
                structure["unchecked"] += 1
            elif t == "emit_statement":
                structure["emit"] += 1
                ev = next((x for x in n.named_children if x.type == "expression"), None)
                facts[f"event:{_text(ev).split('.')[-1] if ev is not None else '?'}"] += 1
            elif t == "revert_statement":
                structure["revert"] += 1
                facts["guard:revert"] += 1
            elif t == "return_statement":
                structure["return"] += 1
                vals = [x for x in n.named_children if x.type == "expression"]
                arity = 0
                if vals:
                    inner = vals[0]
                    while inner.type == "expression" and inner.named_children:
                        inner = inner.named_children[0]
                    arity = len(inner.named_children) if inner.type == "tuple_expression" else 1
                facts[f"return:{arity}"] += 1
            elif t in ("assignment_expression", "augmented_assignment_expression"):
                structure["assign"] += 1
                lhs = n.child_by_field_name("left") or n.named_children[0]
                for root_name in _lvalues(lhs):
                    if root_name not in locals_:
                        facts[f"write:{root_name}"] += 1
            elif t == "update_expression" or (
                t == "unary_expression" and n.children and n.children[0].type == "delete"
            ):
                structure["assign"] += 1
                target = next((x for x in n.named_children if x.type == "expression"), None)
                for root_name in _lvalues(target) if target is not None else []:
                    if root_name not in locals_:
                        facts[f"write:{root_name}"] += 1
            elif t == "variable_declaration_statement" and any(x.type == "=" for x in n.children):
                structure["assign"] += 1
            elif t == "call_expression":
                callee = _callee(n)
                if callee is None:
                    continue
                if callee.type == "identifier" and _text(callee) in ("require", "assert"):
                    kind = _text(callee)
                    structure[kind] += 1
                    facts[f"guard:{kind}"] += 1
                    continue
                structure["call"] += 1
                if callee.type == "member_expression":
                    member = _text(callee.named_children[-1]) if callee.named_children else ""
                    obj = _text(callee.named_children[0]) if callee.named_children else ""
                    if member in _LOW_LEVEL or (
                        member not in _BUILTIN_MEMBERS
                        and obj not in ("abi", "super", "this", "type", "string", "bytes")
                    ):
                        facts[f"call:{member}"] += 1
    return FunctionFacts(
        parsed=True, has_error=root.has_error, signature=signature, structure=structure, facts=facts
    )


def _getter_signature(var: Any) -> str | None:
    """Signature of a public state variable's getter: mapping keys and array indices are its
    parameters (Solidity docs, "Getter Functions"); None when the variable is not public."""
    if not any(c.type == "visibility" and _text(c) == "public" for c in var.children):
        return None
    name = next((_text(c) for c in var.children if c.type == "identifier"), None)
    node = next((c for c in var.children if c.type == "type_name"), None)
    params: list[str] = []
    while node is not None:
        kinds = [c.type for c in node.children]
        if "mapping" in kinds:
            key = next(
                (c for c in node.named_children if c.type not in ("identifier", "type_name")), None
            )
            if key is None:
                break
            params.append(canonical_type(_text(key)))
            node = next((c for c in reversed(node.named_children) if c.type == "type_name"), None)
        elif kinds and kinds[-1] == "]":
            params.append("uint256")
            node = node.named_children[0] if node.named_children else None
        else:
            break
    return f"{name}({','.join(params)})" if name else None


def multiset_prf(reference: Counter[str], hypothesis: Counter[str]) -> tuple[int, int, int]:
    """``(overlap, n_hypothesis, n_reference)`` of two multisets (overlap = Σ min counts)."""
    overlap = sum((reference & hypothesis).values())
    return overlap, sum(hypothesis.values()), sum(reference.values())


def f1_from_counts(overlap: int, n_hyp: int, n_ref: int) -> float:
    """Multiset F1 = 2·overlap / (n_hyp + n_ref); 1.0 when both are empty."""
    return 1.0 if n_hyp + n_ref == 0 else 2.0 * overlap / (n_hyp + n_ref)


def structural_f1(reference: FunctionFacts, hypothesis: FunctionFacts) -> float:
    """Structural preservation in [0, 1]: multiset F1 of the two statement-kind multisets.

    An unparsable hypothesis (no function found) scores 0 unless the reference is empty too.
    """
    return f1_from_counts(*multiset_prf(reference.structure, hypothesis.structure))


def fact_counts(
    reference: FunctionFacts, hypothesis: FunctionFacts
) -> dict[str, tuple[int, int, int]]:
    """Per fact kind (and ``"all"``): ``(overlap, n_hypothesis, n_reference)`` for micro-averaging."""
    out: dict[str, tuple[int, int, int]] = {}
    for kind in FACT_KINDS:
        r = Counter({k: v for k, v in reference.facts.items() if k.startswith(kind + ":")})
        h = Counter({k: v for k, v in hypothesis.facts.items() if k.startswith(kind + ":")})
        out[kind] = multiset_prf(r, h)
    out["all"] = multiset_prf(reference.facts, hypothesis.facts)
    return out


def precision_recall(overlap: int, n_hyp: int, n_ref: int) -> tuple[float, float]:
    """Precision = overlap / n_hyp (1.0 when nothing was claimed), recall = overlap / n_ref (1.0 when nothing was due)."""
    return (overlap / n_hyp if n_hyp else 1.0, overlap / n_ref if n_ref else 1.0)


def signature_match(
    reference_signature: str | None,
    hypothesis: FunctionFacts,
    reference: FunctionFacts | None = None,
) -> bool:
    """Strict signature match: the hypothesis' normalised signature equals the reference's.

    The reference is the record's ABI signature (``transfer(address,uint256)``) or, for
    struct/enum/contract parameters, the normalised signature parsed from the source text.
    False when the hypothesis has no parsable function header.
    """
    if hypothesis.signature is None:
        return False
    hyp = normalise_signature(hypothesis.signature)
    cands = set()
    if reference_signature:
        cands.add(normalise_signature(reference_signature))
    if reference is not None and reference.signature:
        cands.add(normalise_signature(reference.signature))
    return hyp in cands
