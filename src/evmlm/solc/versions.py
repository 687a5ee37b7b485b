"""Solidity version pragmas and the choice of compiler.

``pragma solidity`` ranges follow npm's semver range grammar (Solidity docs, "Version
Pragma"): ``^0.8.0``, ``>=0.6.0 <0.8.0``, ``0.8.26``, ``=0.7.6``, ``>0.4.23 || ^0.5.0``. They
are parsed with ``semantic_version.NpmSpec`` after normalising the spacing Solidity allows
(``>=0.5.0<0.7.0``). The chosen compiler is the newest installed version satisfying the pragmas
of a file and of every file it imports.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from semantic_version import NpmSpec, Version

from evmlm.corpus.source_text import PRAGMA_RE, pragmas, strip_comments
from evmlm.errors import EvmlmError

__all__ = [
    "PRAGMA_RE",
    "Compiler",
    "PragmaError",
    "compatible_pragmas",
    "installed_compilers",
    "parse_pragma",
    "pragmas",
    "resolve_version",
    "satisfying_versions",
    "spread_versions",
    "strip_comments",
]

log = logging.getLogger(__name__)


class PragmaError(EvmlmError, ValueError):
    """A version pragma cannot be parsed, pragmas conflict, or no installed compiler satisfies them."""


@dataclass(frozen=True)
class Compiler:
    """An installed compiler: ``kind`` is ``"solcjs"`` (``location`` = node module dir) or ``"native"`` (binary path)."""

    version: str
    kind: str
    location: str


def _normalise(expr: str) -> str:
    expr = expr.strip().replace('"', "").replace("'", "")
    expr = re.sub(r"(>=|<=|>|<|=|\^|~)\s+", r"\1", expr)  # ">= 0.5.0" -> ">=0.5.0"
    expr = re.sub(r"(\d)(>=|<=|>|<|\^|~|=)", r"\1 \2", expr)  # ">=0.5.0<0.7.0"
    return re.sub(r"\s+", " ", expr)


@functools.lru_cache(maxsize=4096)
def parse_pragma(expr: str) -> NpmSpec:
    """Parse one pragma expression. Raises PragmaError naming the expression."""
    try:
        return NpmSpec(_normalise(expr))
    except ValueError as e:
        raise PragmaError(f"pragma solidity {expr!r}: not a valid version range ({e})") from e


# Every solc release 0.4.0 .. 0.8.x, used to tell "pragmas conflict" from "no compiler installed".
_ALL_RELEASES = (
    [Version(f"0.4.{i}") for i in range(27)]
    + [Version(f"0.5.{i}") for i in range(18)]
    + [Version(f"0.6.{i}") for i in range(13)]
    + [Version(f"0.7.{i}") for i in range(7)]
    + [Version(f"0.8.{i}") for i in range(60)]
)


def _package_json_root() -> Path:
    here = Path(__file__).resolve()
    for p in [Path.cwd(), *here.parents]:
        if (p / "package.json").is_file() and (p / "node_modules").is_dir():
            return p
    return Path.cwd()


@functools.lru_cache(maxsize=1)
def installed_compilers() -> tuple[Compiler, ...]:
    """solc-js modules in node_modules (aliases ``solcNNNN`` from package.json) and a native ``solc`` on PATH.

    When both exist for a version, the native binary wins. Newest first.
    """
    found: dict[str, Compiler] = {}
    root = _package_json_root()
    for d in sorted((root / "node_modules").glob("solc*")):
        pj = d / "package.json"
        if not pj.is_file() or not (d / "soljson.js").is_file():
            continue
        try:
            v = json.loads(pj.read_text())["version"]
        except (OSError, ValueError, KeyError):
            continue
        found[v] = Compiler(v, "solcjs", str(d))
    native = shutil.which("solc")
    if native:
        try:
            out = subprocess.run(
                [native, "--version"], capture_output=True, text=True, timeout=20
            ).stdout
            m = re.search(r"Version:\s*(\d+\.\d+\.\d+)", out)
            if m:
                found[m.group(1)] = Compiler(m.group(1), "native", native)
        except (OSError, subprocess.TimeoutExpired):
            log.warning("native solc at %s did not answer --version; ignored", native)
    return tuple(sorted(found.values(), key=lambda c: Version(c.version), reverse=True))


def satisfying_versions(
    file_pragmas: Mapping[str, Iterable[str]], *, installed: Iterable[str] | None = None
) -> list[str]:
    """Every installed compiler version satisfying all pragmas, newest first (may be empty)."""
    versions = sorted(
        {
            Version(v)
            for v in (
                installed if installed is not None else [c.version for c in installed_compilers()]
            )
        },
        reverse=True,
    )
    specs = [parse_pragma(expr) for exprs in file_pragmas.values() for expr in exprs]
    return [str(v) for v in versions if all(spec.match(v) for spec in specs)]


def compatible_pragmas(importer_text: str, imported_text: str) -> bool:
    """Whether some installed compiler satisfies the pragmas of both texts (False when either
    pragma does not parse). :class:`evmlm.corpus.imports.ImportResolver` takes it to pick the
    version of an undeclared import."""
    try:
        return bool(
            satisfying_versions(
                {"importer": pragmas(importer_text), "imported": pragmas(imported_text)}
            )
        )
    except PragmaError:
        return False


def spread_versions(candidates: Sequence[str], n: int) -> list[str]:
    """Up to ``n`` of ``candidates`` (newest first, as :func:`satisfying_versions` gives them):
    the newest, the oldest, then evenly spaced ranks between, newest first.

    More compilers per file give more distinct bytecode for the same source (different
    optimizer and code-generator releases); spreading over the allowed range maximises the
    difference. Example: 18 allowed 0.8.x releases and n=3 → 0.8.37, the middle one, 0.8.20.
    """
    if n <= 1 or len(candidates) <= 1:
        return list(candidates[:1])
    n = min(n, len(candidates))
    ranks = sorted(
        {k * (len(candidates) - 1) // (n - 1) for k in range(n)}
    )  # rank k*(L-1)/(n-1), rounded down
    return [candidates[r] for r in ranks]


def resolve_version(
    file_pragmas: Mapping[str, Iterable[str]], *, installed: Iterable[str] | None = None
) -> str:
    """The newest installed compiler version satisfying every pragma of every file.

    ``file_pragmas``: path -> pragma expressions of that file (a file without pragmas accepts any).
    Raises PragmaError: when the pragmas conflict (no solc release satisfies them all; the
    message names two files whose ranges do not overlap) or when none of the installed
    compilers satisfies them (the message names the range; install one in package.json).
    """
    found = satisfying_versions(file_pragmas, installed=installed)
    if found:
        return found[0]
    specs = [
        (path, expr, parse_pragma(expr)) for path, exprs in file_pragmas.items() for expr in exprs
    ]
    releases = [v for v in _ALL_RELEASES if all(spec.match(v) for _, _, spec in specs)]
    if not releases:
        for i, (pa, ea, sa) in enumerate(specs):
            for pb, eb, sb in specs[i + 1 :]:
                if not any(sa.match(v) and sb.match(v) for v in _ALL_RELEASES):
                    raise PragmaError(
                        f"{pa}: pragma solidity {ea} conflicts with {pb}: pragma solidity {eb}; no compiler satisfies both"
                    )
        raise PragmaError(
            f"{specs[0][0] if specs else '?'}: the version pragmas of the file and its imports have no common solc release"
        )
    want = ", ".join(sorted({e for _, e, _ in specs}))
    raise PragmaError(
        f"no installed solc satisfies pragma(s) {want} (e.g. {releases[-1]}); add solc@{releases[-1]} to package.json dependencies"
    )
