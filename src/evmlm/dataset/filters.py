"""Pair filters, each counted.

Applied in this order; a record is dropped by the first filter it fails, and that filter's
count goes up:

* ``tac_empty``: the lifter produced no TAC statements for the function.
* ``no_body``: an interface or abstract declaration (a function without a ``{ ... }`` body).
* ``solidity_unparsable``: tree-sitter-solidity finds a syntax error in the function's source
  (wrapped in a ``contract { ... }`` so that a lone function or state variable parses).
* ``too_short`` / ``too_long``: the example's length — prompt tokens (TAC + signature +
  contract context) plus target tokens (the Solidity) — is outside ``[min_tokens,
  max_tokens]``. Tokens are **whitespace tokens** (``str.split``): the project tokenizer is
  trained after the dataset stage (it needs the dataset), so it cannot be used here. The range
  follows the paper (arXiv 2506.19624, §3: functions of 50–20,000 tokens).
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

FILTERS: tuple[str, ...] = ("tac_empty", "no_body", "solidity_unparsable", "too_short", "too_long")


def whitespace_tokens(text: str | None) -> int:
    """Number of whitespace-separated tokens (``len(text.split())``; 0 for None)."""
    return len(text.split()) if text else 0


def prompt_tokens(record: dict[str, Any]) -> int:
    """Whitespace tokens of what the prompt carries: TAC, signature and contract context."""
    return (
        whitespace_tokens(record.get("tac"))
        + whitespace_tokens(record.get("signature"))
        + whitespace_tokens(record.get("contract_context"))
    )


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    import tree_sitter_solidity
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_solidity.language()))


def solidity_parses(text: str, *, kind: str = "function") -> bool:
    """True when tree-sitter-solidity parses ``text`` (a function, or a state variable when
    ``kind == "getter"``) inside a contract body without an ERROR or MISSING node."""
    body = text if kind != "getter" or text.rstrip().endswith(";") else text + ";"
    tree = _parser().parse(b"contract __EvmlmCheck {\n" + body.encode("utf-8") + b"\n}\n")
    return not tree.root_node.has_error


def has_body(record: dict[str, Any]) -> bool:
    """Getters always count as implemented; a function needs a ``{ ... }`` body."""
    if record.get("kind") == "getter":
        return True
    return record["solidity"].rstrip().endswith("}")


def check(
    record: dict[str, Any],
    min_tokens: int,
    max_tokens: int,
    parse_cache: dict[tuple[str, str], bool] | None = None,
) -> str | None:
    """The name of the first filter ``record`` fails, or None when it passes all.

    ``parse_cache`` memoises the syntax check per (kind, Solidity text): the same function
    compiled under several settings is parsed once."""
    tac = record.get("tac") or ""
    if not any(
        line.strip() and not line.lstrip().startswith(("function ", "block "))
        for line in tac.splitlines()
    ):
        return "tac_empty"
    if not has_body(record):
        return "no_body"
    key = (record.get("kind", "function"), record["solidity"])
    ok = parse_cache.get(key) if parse_cache is not None else None
    if ok is None:
        ok = solidity_parses(record["solidity"], kind=key[0])
        if parse_cache is not None:
            parse_cache[key] = ok
    if not ok:
        return "solidity_unparsable"
    n = prompt_tokens(record) + whitespace_tokens(record["solidity"])
    if n < min_tokens:
        return "too_short"
    if n > max_tokens:
        return "too_long"
    return None


def apply_filters(
    records: Iterable[dict[str, Any]], min_tokens: int, max_tokens: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Split records into kept ones and per-filter drop counts (every name in FILTERS present)."""
    kept = []
    dropped: Counter[str] = Counter({name: 0 for name in FILTERS})
    cache: dict[tuple[str, str], bool] = {}
    for r in records:
        why = check(r, min_tokens, max_tokens, cache)
        if why is None:
            kept.append(r)
        else:
            dropped[why] += 1
    return kept, dict(dropped)
