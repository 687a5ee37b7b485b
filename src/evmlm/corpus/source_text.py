"""Facts read off a Solidity source text without compiling it: comments stripped, the
``pragma solidity`` expressions. The lowest layer of the Solidity side: the corpus (manifest,
import resolution) and the compiler driver (version choice) both use it.

Comment syntax and ``pragma solidity`` follow the Solidity docs ("Comments", "Version Pragma").
"""

from __future__ import annotations

import functools
import re

PRAGMA_RE = re.compile(r"pragma\s+solidity\s+([^;]+);")
# A string literal (kept) or a comment (dropped): import paths may contain "//".
_COMMENT_RE = re.compile(r"(\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')|//[^\n]*|/\*.*?\*/", re.S)


def strip_comments(text: str) -> str:
    """The text with // and /* */ comments removed (string literals kept intact)."""
    return _COMMENT_RE.sub(lambda m: m.group(1) or " ", text)


def pragmas(text: str) -> list[str]:
    """The ``pragma solidity`` expressions of a source text (comments ignored)."""
    return list(_pragmas(text))


@functools.lru_cache(maxsize=1 << 16)
def _pragmas(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in PRAGMA_RE.findall(strip_comments(text)))
