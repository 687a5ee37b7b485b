"""Does a text parse as one Solidity contract member? (tree-sitter-solidity)

The one Solidity parser of evmlm (:func:`solidity_parser`) and the member check that
decompilation (a function that does not parse is kept as a comment) and evaluation (such a
function "does not recompile" without running solc) share.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any


@functools.lru_cache(maxsize=1)
def solidity_parser() -> Any:
    """A tree-sitter parser for Solidity (tree-sitter-solidity's grammar), built once."""
    import tree_sitter as ts
    import tree_sitter_solidity as tss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        lang = ts.Language(tss.language())
    return ts.Parser(lang)


_MEMBERS = ("function_definition", "fallback_receive_definition", "state_variable_declaration")


def _member_syntax(text: str) -> str | None:
    tree = solidity_parser().parse(f"contract __C {{\n{text}\n}}".encode("utf-8"))
    root = tree.root_node
    body = root.children[0].children[-1] if root.children and root.children[0].children else None
    members = [n for n in body.children if n.type in _MEMBERS] if body is not None else []
    if root.has_error:
        err = _first_error(root)
        where = (
            f" at line {err.start_point[0]}, column {err.start_point[1] + 1}"
            if err is not None
            else ""
        )
        return f"not valid Solidity (syntax error{where})"
    if not members:
        return "no function definition in the output"
    return None


def _completed_member(text: str) -> tuple[str, str | None]:
    """(``text``, with the final ``;`` a state-variable declaration needs in a file when only
    that is missing; the syntax problem of the result, or None). solc's ``src`` of a state
    variable excludes its ``;``, which is how the dataset stores getters."""
    reason = _member_syntax(text)
    t = text.rstrip()
    if reason is not None and not t.endswith((";", "}")) and _member_syntax(t + ";") is None:
        return t + ";", None
    return text, reason


def check_function_syntax(text: str) -> str | None:
    """None when ``text`` parses (tree-sitter) as a contract member — a function, or a public
    state variable (whose getter a selector can belong to; a missing final ``;`` is accepted)
    — else the reason (one line)."""
    if not text.strip():
        return "the model produced no text"
    return _completed_member(text)[1]


def complete_member(text: str) -> str:
    """``text`` with the final ``;`` a state-variable declaration needs in a file, when missing."""
    return _completed_member(text)[0]


def _first_error(node: Any) -> Any | None:
    if node.type == "ERROR" or node.is_missing:
        return node
    for c in node.children:
        if c.has_error or c.is_missing:
            found = _first_error(c)
            if found is not None:
                return found
    return None
