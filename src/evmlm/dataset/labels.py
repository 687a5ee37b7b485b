"""Multi-task labels of a pair record, from the tree-sitter parse of its reference Solidity.

Two labels per function, both computed from the ``solidity`` (and ``contract_context``) of a
pair record, so nothing is labelled by hand (docs/multitask.md lists the classes and the rules):

- ``solidity_classes``: one character per character of ``solidity`` (the same length), the
  character ``chr(CLASS_BASE + i)`` standing for semantic class ``SEMANTIC_CLASSES[i]``
  (keyword, elementary type, state variable, parameter, event name, external call, literal,
  operator, ...). A model's tokens get the class of their first non-whitespace character
  (:func:`token_class`), so the labels do not depend on the tokenizer, which is trained after
  the dataset.
- ``elements``: the function's element types (``ELEMENT_TYPES``: external call, delegatecall,
  storage write, event, require/revert, custom error, loop, inline assembly, ...) as compiled:
  of its own text and of the internal functions and modifiers it reaches (:func:`label_fields`),
  sorted and joined by single spaces ("" for none).

The dataset stage adds both to every exported record (:func:`label_fields`). The parser is
tree-sitter-solidity (the grammar :mod:`evmlm.dataset.filters` checks syntax with); the
function is parsed inside ``contract __EvmlmLabels { ... }`` with its contract context so
that state variables, events, errors and constants declared there are known by name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

#: Bump when the labels of the same source change (the dataset stage's fingerprint covers it).
LABELS_VERSION = 2  # 2: elements of the code the function reaches, not only of its own text

#: Semantic classes of target characters/tokens, in id order (docs/multitask.md).
SEMANTIC_CLASSES: tuple[str, ...] = (
    "whitespace",
    "comment",
    "kw_function",  # function, constructor, modifier, fallback, receive
    "kw_returns",
    "kw_return",
    "kw_branch",  # if, else
    "kw_loop",  # for, while, do, break, continue
    "kw_try",  # try, catch
    "kw_visibility",  # public, external, internal, private
    "kw_mutability",  # view, pure, payable, constant, immutable
    "kw_override",  # virtual, override
    "kw_location",  # memory, storage, calldata
    "kw_emit",
    "kw_revert",
    "kw_unchecked",
    "kw_assembly",
    "kw_new",
    "kw_delete",
    "kw_other",
    "elementary_type",  # uint256, address, bool, bytes32, string, mapping, ...
    "user_type",  # struct / contract / interface / enum names used as types
    "type_cast",  # the type of a conversion: address(x), uint8(y), IERC20(t)
    "function_name",  # the name in the function's own header
    "parameter_decl",
    "parameter",
    "return_var_decl",
    "return_var",
    "local_var_decl",
    "local_var",
    "state_var",
    "constant",  # constants and immutables of the context, ALL_CAPS names
    "event_name",
    "error_name",
    "modifier_name",
    "internal_call",
    "external_call",  # the member called on another contract: token.transfer(...)
    "low_level_call",  # call, delegatecall, staticcall, send, transfer (on an address)
    "builtin_object",  # msg, block, tx, abi, this, super
    "builtin_member",  # sender, value, timestamp, encode, ...
    "builtin_function",  # require, assert, keccak256, ecrecover, gasleft, type, ...
    "member",  # struct field / enum value / other member access
    "number_literal",
    "string_literal",
    "bool_literal",
    "op_arithmetic",
    "op_comparison",
    "op_logical",
    "op_bitwise",
    "op_assignment",
    "op_update",  # ++ --
    "op_ternary",
    "punctuation",  # ( ) [ ] { } ; , . =>
    "assembly_builtin",  # Yul builtins: mload, sstore, call, create2, ...
    "assembly_other",  # other Yul identifiers and literals
    "other",
)
CLASS_INDEX: dict[str, int] = {c: i for i, c in enumerate(SEMANTIC_CLASSES)}
#: ``solidity_classes`` character of class i is ``chr(CLASS_BASE + i)`` (printable ASCII).
CLASS_BASE = 0x30

#: Element types of a function (multi-label), in id order (docs/multitask.md).
ELEMENT_TYPES: tuple[str, ...] = (
    "external_call",
    "low_level_call",
    "delegatecall",
    "staticcall",
    "value_transfer",
    "storage_write",
    "storage_read",
    "mapping_access",
    "event_emit",
    "require",
    "assert",
    "revert",
    "custom_error",
    "error_message",
    "loop",
    "conditional",
    "inline_assembly",
    "msg_sender",
    "msg_value",
    "block_timestamp",
    "block_number",
    "tx_origin",
    "unchecked_block",
    "payable",
    "view_or_pure",
    "returns_value",
    "internal_call",
    "hashing",
    "abi_coding",
    "contract_creation",
    "modifier",
    "try_catch",
    "array_push_pop",
    "signature_recovery",
)
ELEMENT_INDEX: dict[str, int] = {e: i for i, e in enumerate(ELEMENT_TYPES)}

_WRAP_HEAD = "contract __EvmlmLabels {\n"

_KEYWORDS: dict[str, str] = {
    **dict.fromkeys(("function", "constructor", "modifier", "fallback", "receive"), "kw_function"),
    "returns": "kw_returns",
    "return": "kw_return",
    **dict.fromkeys(("if", "else"), "kw_branch"),
    **dict.fromkeys(("for", "while", "do", "break", "continue"), "kw_loop"),
    **dict.fromkeys(("try", "catch"), "kw_try"),
    **dict.fromkeys(("public", "external", "internal", "private"), "kw_visibility"),
    **dict.fromkeys(("view", "pure", "payable", "constant", "immutable"), "kw_mutability"),
    **dict.fromkeys(("virtual", "override"), "kw_override"),
    **dict.fromkeys(("memory", "storage", "calldata"), "kw_location"),
    "emit": "kw_emit",
    "revert": "kw_revert",
    "unchecked": "kw_unchecked",
    "assembly": "kw_assembly",
    "new": "kw_new",
    "delete": "kw_delete",
}
_OPERATORS: dict[str, str] = {
    **dict.fromkeys(("+", "-", "*", "/", "%", "**"), "op_arithmetic"),
    **dict.fromkeys(("==", "!=", "<", ">", "<=", ">="), "op_comparison"),
    **dict.fromkeys(("&&", "||", "!"), "op_logical"),
    **dict.fromkeys(("&", "|", "^", "~", "<<", ">>", ">>>"), "op_bitwise"),
    **dict.fromkeys(
        ("=", "+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "<<=", ">>=", ":="), "op_assignment"
    ),
    **dict.fromkeys(("++", "--"), "op_update"),
    **dict.fromkeys(("?",), "op_ternary"),
}
_PUNCT = frozenset("()[]{};,.") | {"=>"}
_BUILTIN_OBJECTS = frozenset(("msg", "block", "tx", "abi", "this", "super"))
_BUILTIN_FUNCTIONS = frozenset(
    (
        "require",
        "assert",
        "keccak256",
        "sha256",
        "ripemd160",
        "ecrecover",
        "gasleft",
        "blockhash",
        "addmod",
        "mulmod",
        "selfdestruct",
        "type",
        "payable",
    )
)
_LOW_LEVEL = frozenset(("call", "delegatecall", "staticcall", "send", "transfer"))
_ADDRESS_MEMBERS = frozenset(("balance", "code", "codehash"))
_TYPE_NODES = frozenset(("primitive_type", "type_name", "user_defined_type", "mapping"))


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    import tree_sitter_solidity
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_solidity.language()))


#: token class -> the program element it marks (one to one)
_CLASS_ELEMENT = {
    "external_call": "external_call",
    "kw_emit": "event_emit",
    "kw_branch": "conditional",
    "op_ternary": "conditional",
    "kw_assembly": "inline_assembly",
    "kw_unchecked": "unchecked_block",
    "kw_try": "try_catch",
    "kw_revert": "revert",
    "error_name": "custom_error",
    "modifier_name": "modifier",
    "internal_call": "internal_call",
    "kw_new": "contract_creation",
    "state_var": "storage_read",
}
_CALLS: dict[str, tuple[str, ...]] = {
    "call": ("low_level_call",),
    "delegatecall": ("low_level_call", "delegatecall"),
    "staticcall": ("low_level_call", "staticcall"),
}
#: token class -> token text -> the elements it marks
_TEXT_ELEMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "low_level_call": {**_CALLS, "send": ("value_transfer",), "transfer": ("value_transfer",)},
    "assembly_builtin": {
        **_CALLS,
        "callcode": ("low_level_call",),
        "sstore": ("storage_write",),
        "sload": ("storage_read",),
        "create": ("contract_creation",),
        "create2": ("contract_creation",),
        "log0…log4": ("event_emit",),
        "revert": ("revert",),
    },
    "builtin_function": {
        "require": ("require",),
        "assert": ("assert",),
        "ecrecover": ("signature_recovery",),
        "selfdestruct": ("value_transfer",),
        "keccak256": ("hashing",),
        "sha256": ("hashing",),
        "ripemd160": ("hashing",),
    },
}
#: (the token two before, a member name) -> the element (``msg.sender`` …)
_MEMBER_ELEMENT = {
    ("msg", "sender"): "msg_sender",
    ("msg", "value"): "msg_value",
    ("block", "timestamp"): "block_timestamp",
    ("block", "number"): "block_number",
    ("tx", "origin"): "tx_origin",
}


@dataclass(frozen=True)
class Labels:
    """The labels of one function: ``classes`` (one class id per character of the Solidity)
    and ``elements`` (element-type names, sorted)."""

    classes: tuple[int, ...]
    elements: tuple[str, ...]

    def __post_init__(self) -> None:
        if any(not 0 <= c < len(SEMANTIC_CLASSES) for c in self.classes):
            raise ValueError("Labels: class id out of range")
        unknown = set(self.elements) - set(ELEMENT_TYPES)
        if unknown:
            raise ValueError(f"Labels: unknown element types {sorted(unknown)}")


def _declared_names(context_root: Any) -> dict[str, str]:
    """Names declared in the contract context: name -> class (state_var, constant,
    event_name, error_name, modifier_name, user_type)."""
    out: dict[str, str] = {}
    for node in _walk(context_root):
        t = node.type
        name = node.child_by_field_name("name")
        if name is None:
            continue
        text = name.text.decode("utf-8", "replace")
        if t == "state_variable_declaration":
            const = any(c.type in ("constant", "immutable") for c in node.children)
            out[text] = "constant" if const else "state_var"
        elif t == "event_definition":
            out[text] = "event_name"
        elif t == "error_declaration":
            out[text] = "error_name"
        elif t == "modifier_definition":
            out[text] = "modifier_name"
        elif t in (
            "struct_declaration",
            "enum_declaration",
            "contract_declaration",
            "interface_declaration",
            "library_declaration",
            "user_defined_type_definition",
        ):
            out.setdefault(text, "user_type")
    return out


def _walk(node: Any) -> Any:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _leaves(node: Any) -> list[Any]:
    """Leaf nodes in source order; string/number literals and comments count as one leaf."""
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.child_count == 0 or n.type in (
            "string",
            "number_literal",
            "hex_string_literal",
            "unicode_string_literal",
            "comment",
            "yul_string_literal",
        ):
            out.append(n)
        else:
            stack.extend(reversed(n.children))
    return out


class _Labeller:
    def __init__(
        self, fn: Any, declared: Mapping[str, str], internal_members: frozenset[int] = frozenset()
    ) -> None:
        self.fn = fn
        self.declared = dict(declared)
        self.internal_members = internal_members  # byte offsets of library/super member calls
        self.params: set[str] = set()
        self.returns: set[str] = set()
        self.locals: set[str] = set()
        self.elements: set[str] = set()
        self._collect_declarations()

    def _collect_declarations(self) -> None:
        for node in _walk(self.fn):
            if node.type == "parameter":
                name = node.child_by_field_name("name")
                if name is None:
                    continue
                in_returns = node.parent is not None and node.parent.type in (
                    "return_type_definition",
                )
                (self.returns if in_returns else self.params).add(name.text.decode())
            elif node.type == "variable_declaration":
                name = node.child_by_field_name("name")
                if name is not None:
                    self.locals.add(name.text.decode())
            elif node.type == "yul_variable_declaration":
                for c in node.children:
                    if c.type == "yul_identifier":
                        self.locals.add(c.text.decode())

    def _variable_class(self, text: str, decl: bool) -> str:
        if text in self.locals:
            return "local_var_decl" if decl else "local_var"
        if text in self.params:
            return "parameter_decl" if decl else "parameter"
        if text in self.returns:
            return "return_var_decl" if decl else "return_var"
        known = self.declared.get(text)
        if known:
            return known
        if re.fullmatch(r"[A-Z][A-Z0-9_]+", text):
            return "constant"
        return "state_var"

    def identifier_class(self, leaf: Any, prev2: str) -> str:
        text = leaf.text.decode("utf-8", "replace")
        parent = leaf.parent
        ptype = parent.type if parent is not None else ""
        grand = parent.parent if parent is not None else None
        gtype = grand.type if grand is not None else ""
        if ptype in ("yul_identifier", "yul_path"):
            return (
                self._variable_class(text, decl=False)
                if text in (self.locals | self.params | self.returns)
                else "assembly_other"
            )
        if ptype == "function_definition":
            return "function_name"
        if ptype == "modifier_invocation":
            return "modifier_name"
        if ptype in ("parameter",):
            in_ret = grand is not None and gtype == "return_type_definition"
            return "return_var_decl" if in_ret else "parameter_decl"
        if ptype == "variable_declaration":
            return "local_var_decl"
        if ptype in ("user_defined_type", "type_name"):
            return "user_type"
        if ptype == "emit_statement" or (ptype == "expression" and gtype == "emit_statement"):
            return "event_name"
        if ptype == "revert_statement" or (ptype == "expression" and gtype == "revert_statement"):
            return "error_name"
        if ptype == "member_expression":
            prop = parent.child_by_field_name("property")
            if prop is not None and prop.id == leaf.id:
                return self._member_class(parent, text, prev2, leaf.start_byte)
        if text in _BUILTIN_OBJECTS:
            return "builtin_object"
        if text in _BUILTIN_FUNCTIONS and _is_callee(leaf):
            return "builtin_function"
        if _is_callee(leaf):
            known = self.declared.get(text)
            if known in ("error_name", "event_name"):
                return known
            if text in self.locals | self.params | self.returns:
                return self._variable_class(text, decl=False)
            if known == "user_type" or re.fullmatch(r"I?[A-Z]\w*", text):
                return "type_cast"
            return "internal_call"
        if ptype == "struct_field_assignment":
            return "member"
        if (
            ptype == "member_expression"
            and re.fullmatch(r"[A-Z][a-z0-9]\w*", text)
            and text not in self.locals | self.params | self.returns
            and self.declared.get(text) in (None, "user_type")
        ):
            return "user_type"  # Math.max, Status.Active: a library, contract or enum name
        if text in ("true", "false"):
            return "bool_literal"
        return self._variable_class(text, decl=False)

    def _member_class(self, member: Any, prop: str, obj_text: str, at: int = -1) -> str:
        # the object is the leaf before the dot (``prev2``), not the parse's object node:
        # tree-sitter-solidity 1.2 binds ``a && msg.sender`` as ``(a && msg).sender``
        if obj_text in _BUILTIN_OBJECTS and obj_text not in ("this", "super"):
            return "builtin_member"
        if _is_callee(member):
            if prop in _LOW_LEVEL and (prop not in ("send", "transfer") or _n_args(member) == 1):
                return "low_level_call"  # address.transfer(v) / send(v): one argument
            if obj_text == "super":
                return "internal_call"
            if prop in ("push", "pop", "concat", "encode", "encodePacked", "decode"):
                return "builtin_member"
            if at in self.internal_members:
                return "internal_call"  # a library function, Base.f (the AST says so)
            return "external_call"
        if prop in _ADDRESS_MEMBERS or prop in ("length", "selector"):
            return "builtin_member"
        return "member"

    def leaf_class(self, leaf: Any, prev2: str = "") -> str:
        """The semantic class of a leaf; ``prev2``: the text of the leaf two before it (the
        object of a member access ``obj.prop``)."""
        t = leaf.type
        text = leaf.text.decode("utf-8", "replace")
        parent = leaf.parent
        ptype = parent.type if parent is not None else ""
        if t == "comment":
            return "comment"
        if t in ("string", "hex_string_literal", "unicode_string_literal", "yul_string_literal"):
            return "string_literal" if not ptype.startswith("yul") else "assembly_other"
        if t in ("number_literal",):
            return "number_literal"
        if t in ("yul_decimal_number", "yul_hex_number", "yul_boolean"):
            return "assembly_other"
        if ptype == "yul_evm_builtin":
            return "assembly_builtin"
        if t in ("true", "false"):
            return "bool_literal"
        if t == "identifier":
            return self.identifier_class(leaf, prev2)
        if ptype == "primitive_type" or t == "mapping":
            if parent is not None and parent.parent is not None:
                if parent.parent.type == "type_cast_expression":
                    return "type_cast"
            return "elementary_type"
        if text in _KEYWORDS and (not leaf.is_named or t == text):
            if t == "payable" and ptype not in ("state_mutability",):
                return "builtin_function" if ptype != "primitive_type" else "elementary_type"
            return _KEYWORDS[t]
        if text in _OPERATORS and not leaf.is_named:
            if text == "=" and ptype in ("yul_variable_declaration",):
                return "op_assignment"
            return _OPERATORS[text]
        if text == ":" and ptype == "ternary_expression":
            return "op_ternary"
        if text in _PUNCT or text == ":":
            return "punctuation"
        if not leaf.is_named and re.fullmatch(r"[a-z_]+", text):
            return "kw_other"
        return "other"

    def elements_of(self, leaves: list[Any], classes: list[str]) -> set[str]:
        el: set[str] = set()
        texts = [leaf.text.decode("utf-8", "replace") for leaf in leaves]
        for i, (leaf, cls, text) in enumerate(zip(leaves, classes, texts)):
            prev2 = texts[i - 2] if i >= 2 else ""
            if cls in _CLASS_ELEMENT:
                el.add(_CLASS_ELEMENT[cls])
            elif cls == "kw_loop":
                if text in ("for", "while", "do"):
                    el.add("loop")
            elif cls in _TEXT_ELEMENTS:
                key = "log0…log4" if re.fullmatch(r"log[0-4]", text) else text
                el.update(_TEXT_ELEMENTS[cls].get(key, ()))
            elif cls == "builtin_member":
                m = _MEMBER_ELEMENT.get((prev2, text))
                if m is None and prev2 == "abi":
                    m = "abi_coding"
                elif m is None and text in ("push", "pop"):
                    m = "array_push_pop"
                if m is not None:
                    el.add(m)
            elif cls == "string_literal" and leaf.parent is not None:
                if _in_call_to(leaf, ("require", "revert")) or _in_revert(leaf):
                    el.add("error_message")
        el |= self._structural_elements()
        return el

    def _structural_elements(self) -> set[str]:
        el: set[str] = set()
        for node in _walk(self.fn):
            t = node.type
            if t == "state_mutability":
                txt = node.text.decode()
                if txt == "payable":
                    el.add("payable")
                elif txt in ("view", "pure"):
                    el.add("view_or_pure")
            elif t == "return_type_definition":
                el.add("returns_value")
            elif t == "struct_field_assignment":
                name = node.child_by_field_name("name")
                if name is not None and name.text == b"value":
                    el.add("value_transfer")
            elif t == "array_access":
                base = node.child_by_field_name("base")
                root = _root_identifier(base)
                if root is not None and self._variable_class(root, False) == "state_var":
                    el.add("mapping_access")
            elif t in ("assignment_expression", "augmented_assignment_expression"):
                left = node.child_by_field_name("left")
                if self._writes_storage(left):
                    el.add("storage_write")
            elif t == "update_expression" or (
                t == "unary_expression" and node.children and node.children[0].type == "delete"
            ):
                target = node.child_by_field_name("argument") or (
                    node.children[-1] if node.children else None
                )
                if self._writes_storage(target):
                    el.add("storage_write")
            elif t == "call_expression":
                callee = node.child_by_field_name("function")
                if callee is not None and callee.text.split(b".")[-1] in (b"push", b"pop"):
                    el.add("array_push_pop")
                    if self._writes_storage(callee):
                        el.add("storage_write")
        return el

    def _writes_storage(self, target: Any) -> bool:
        if target is None:
            return False
        if target.type in ("tuple_expression",):
            return any(self._writes_storage(c) for c in target.children)
        root = _root_identifier(target)
        if root is None:
            return False
        if root in self.locals:
            # a storage pointer declared locally (`Info storage s = ...`) writes storage too
            return self._local_is_storage_pointer(root)
        return self._variable_class(root, False) == "state_var"

    def _local_is_storage_pointer(self, name: str) -> bool:
        for node in _walk(self.fn):
            if node.type == "variable_declaration":
                n = node.child_by_field_name("name")
                if n is not None and n.text.decode() == name:
                    return any(c.type == "storage" for c in node.children) or any(
                        c.type == "storage" for c in _walk(node)
                    )
        return False


def _root_identifier(node: Any) -> str | None:
    """The leftmost identifier of an lvalue (``a`` of ``a.b[c].d``), or None."""
    while node is not None:
        if node.type == "identifier":
            return node.text.decode("utf-8", "replace")
        if node.type in ("expression", "parenthesized_expression"):
            node = node.named_children[0] if node.named_children else None
        elif node.type == "member_expression":
            node = node.child_by_field_name("object")
        elif node.type == "array_access":
            node = node.child_by_field_name("base")
        else:
            return None
    return None


def _is_callee(node: Any) -> bool:
    """True when ``node`` (an identifier or member expression) is the function of a call."""
    cur = node
    while cur.parent is not None and cur.parent.type in ("expression", "struct_expression"):
        if cur.parent.type == "struct_expression" and cur.parent.children[0].id != (
            cur.id if cur.type == "expression" else -1
        ):
            break
        cur = cur.parent
    p = cur.parent
    if p is None or p.type != "call_expression":
        return False
    fn = p.child_by_field_name("function")
    return fn is not None and fn.id == cur.id


def _n_args(callee: Any) -> int:
    """Number of arguments of the call whose function is ``callee`` (-1 when not a call)."""
    cur = callee
    while cur.parent is not None and cur.parent.type in ("expression", "struct_expression"):
        cur = cur.parent
    if cur.parent is None or cur.parent.type != "call_expression":
        return -1
    return sum(1 for c in cur.parent.children if c.type == "call_argument")


def _in_call_to(node: Any, names: tuple[str, ...]) -> bool:
    cur = node.parent
    while cur is not None and cur.type not in ("statement", "function_body"):
        if cur.type == "call_expression":
            fn = cur.child_by_field_name("function")
            if fn is not None and fn.text.decode("utf-8", "replace") in names:
                return True
        cur = cur.parent
    return False


def _in_revert(node: Any) -> bool:
    cur = node.parent
    while cur is not None and cur.type not in ("statement", "function_body"):
        if cur.type == "revert_statement":
            return True
        cur = cur.parent
    return False


def label_function(
    solidity: str,
    contract_context: str = "",
    kind: str = "function",
    internal_member_calls: Collection[int] = (),
) -> Labels:
    """Semantic class per character of ``solidity`` and the function's element types.

    ``solidity``: the function's source text (a pair record's ``solidity``); ``contract_context``:
    the declarations it uses; ``kind``: ``function`` or ``getter`` (a state variable, labelled
    as a declaration); ``internal_member_calls``: byte offsets in ``solidity`` of member names
    of calls the AST knows are not message calls
    (:func:`evmlm.dataset.pairing.internal_member_calls`: ``a.max(b)`` through a library),
    labelled ``internal_call``; any other ``x.f(...)`` is an ``external_call`` (the text alone
    cannot tell them apart). Characters outside any parse node (whitespace) get
    ``whitespace``; characters of a parse that failed locally get ``other``. Never raises on
    bad Solidity.
    """
    ctx = contract_context or ""
    body = solidity if kind != "getter" or solidity.rstrip().endswith(";") else solidity + ";"
    head = _WRAP_HEAD + ctx + "\n"
    data = (head + body + "\n}\n").encode("utf-8")
    tree = _parser().parse(data)
    start = len(head.encode("utf-8"))
    end = start + len(body.encode("utf-8"))
    declared = _declared_names(tree.root_node)
    fn = _function_node(tree.root_node, start) or tree.root_node
    lab = _Labeller(fn, declared, frozenset(start + b for b in internal_member_calls))
    leaves = [leaf for leaf in _leaves(tree.root_node) if start <= leaf.start_byte < end]
    texts = [leaf.text.decode("utf-8", "replace") for leaf in leaves]
    classes = [
        lab.leaf_class(leaf, texts[i - 2] if i >= 2 else "") for i, leaf in enumerate(leaves)
    ]
    elements = lab.elements_of(leaves, classes) if kind != "getter" else {"view_or_pure"}
    if kind == "getter":
        elements |= {"returns_value", "storage_read"}
    # byte offsets -> character offsets of `solidity`
    raw = solidity.encode("utf-8")
    char_at = _byte_to_char(raw)
    out = [CLASS_INDEX["whitespace"]] * len(solidity)
    for leaf, cls in zip(leaves, classes):
        b0, b1 = leaf.start_byte - start, min(leaf.end_byte - start, len(raw))
        c0, c1 = char_at[b0], char_at[b1] if b1 < len(char_at) else len(solidity)
        cid = CLASS_INDEX[cls]
        for i in range(c0, c1):
            if not solidity[i].isspace() or cls == "comment":
                out[i] = cid
    other = CLASS_INDEX["other"]
    for i, ch in enumerate(solidity):  # text no leaf covers (an ERROR node's bytes)
        if out[i] == CLASS_INDEX["whitespace"] and not ch.isspace():
            out[i] = other
    return Labels(classes=tuple(out), elements=tuple(sorted(elements)))


def _byte_to_char(raw: bytes) -> list[int]:
    """Character index of each byte offset of UTF-8 ``raw`` (length ``len(raw) + 1``):
    a continuation byte maps to the character it belongs to."""
    starts = 0
    res = []
    for b in raw:
        if (b & 0xC0) != 0x80:
            res.append(starts)
            starts += 1
        else:
            res.append(starts - 1)
    res.append(starts)
    return res


def _function_node(root: Any, start: int) -> Any:
    for node in _walk(root):
        if node.start_byte >= start and node.type in (
            "function_definition",
            "modifier_definition",
            "constructor_definition",
            "fallback_receive_definition",
            "state_variable_declaration",
        ):
            return node
    return None


def encode_classes(classes: tuple[int, ...] | list[int]) -> str:
    """Class ids as the ``solidity_classes`` string (one character per id)."""
    return "".join(chr(CLASS_BASE + c) for c in classes)


def decode_classes(text: str) -> list[int]:
    """``solidity_classes`` string -> class ids. Raises ValueError for a character out of range."""
    out = [ord(ch) - CLASS_BASE for ch in text]
    if any(not 0 <= c < len(SEMANTIC_CLASSES) for c in out):
        raise ValueError("solidity_classes: character out of range; rebuild the dataset")
    return out


#: Element types of a function's header (its own declaration), not taken from reached code.
HEADER_ELEMENTS = frozenset(("payable", "view_or_pure", "returns_value"))


def label_fields(record: Mapping[str, Any]) -> dict[str, str]:
    """The new pair-record fields of a record: ``solidity_classes`` and ``elements``.

    ``elements`` are those of the function as compiled: its own text's, and those of every
    internal function and modifier it reaches (the raw record's ``reached``, from
    :meth:`evmlm.dataset.pairing.AstIndex.reached`), less :data:`HEADER_ELEMENTS`, which only
    the function's own header states. The raw record's ``internal_member_calls`` (and each
    reached text's) tell library calls from message calls (:func:`label_function`).
    ``transfer`` calling ``_transfer``, which writes balances and emits ``Transfer``, has
    ``storage_write`` and ``event_emit``: its bytecode does.
    """
    context = record.get("contract_context") or ""
    lab = label_function(
        record.get("solidity") or "",
        context,
        record.get("kind") or "function",
        record.get("internal_member_calls") or (),
    )
    elements = set(lab.elements)
    for text, calls in record.get("reached") or ():
        elements |= set(label_function(text, context, "function", calls).elements) - HEADER_ELEMENTS
    return {
        "solidity_classes": encode_classes(lab.classes),
        "elements": " ".join(sorted(elements)),
    }


def token_class(char_classes: list[int] | str, text: str, start: int, end: int) -> int:
    """The class of a token covering characters ``[start, end)`` of a labelled text: the class
    of its first non-whitespace character (``whitespace`` for a whitespace-only token)."""
    if isinstance(char_classes, str):
        char_classes = decode_classes(char_classes)
    for i in range(max(start, 0), min(end, len(text))):
        if not text[i].isspace():
            return char_classes[i]
    return CLASS_INDEX["whitespace"]
