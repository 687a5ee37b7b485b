"""Import resolution: a root file plus every file it imports, as one standard-JSON job.

Source unit names (the keys solc sees) are *logical paths*: the root package's files keep
their import path (``@openzeppelin/contracts/token/ERC20/ERC20.sol``); a dependency is
placed under a versioned prefix (``@openzeppelin/contracts@3.4.2-solc-0.7/...``) so two
versions of one package never collide. The solc remappings that make solc resolve each
import exactly as this module did are part of the job (``context:prefix=target``, solc docs
"Import Remapping"): one entry per (importing package, imported package name).
"""

from __future__ import annotations

import functools
import logging
import posixpath
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from semantic_version import Version

from evmlm.corpus.packages import Package, contained_rel
from evmlm.corpus.source_text import strip_comments

log = logging.getLogger(__name__)

IMPORT_RE = re.compile(r"\bimport\s+(?:[^;\"']*?\bfrom\s+)?[\"']([^\"']+)[\"']", re.S)


def imports_of(text: str) -> list[str]:
    """Import paths of a Solidity source, in order (comments ignored)."""
    return list(_imports(text))


@functools.lru_cache(maxsize=1 << 16)
def _imports(text: str) -> tuple[str, ...]:
    return tuple(IMPORT_RE.findall(strip_comments(text)))


def parse_remapping(r: str) -> tuple[str, str, str]:
    """``[context:]prefix=target`` -> ``(context, prefix, target)``."""
    left, _, target = r.partition("=")
    ctx, sep, prefix = left.rpartition(":")
    if not sep:
        ctx, prefix = "", left
    return ctx, prefix, target


def apply_remappings(remappings: Sequence[str], importer: str, path: str) -> str:
    """Apply solc remapping rules: longest matching context wins, then longest prefix."""
    best: tuple[int, int, str, str] | None = None
    for r in remappings:
        ctx, prefix, target = parse_remapping(r)
        if importer.startswith(ctx) and path.startswith(prefix) and prefix:
            cand = (len(ctx), len(prefix), prefix, target)
            if best is None or cand[:2] > best[:2]:
                best = cand
    if best is None:
        return path
    return best[3] + path[len(best[2]) :]


def _semver(v: str) -> Version:
    try:
        return Version.coerce(v)
    except ValueError:
        return Version("0.0.0")


def _join(importer: str, rel: str) -> str:
    return _join_raw(importer, rel).lstrip("/")


def _join_raw(importer: str, rel: str) -> str:
    """``rel`` (``./x``, ``../x``) relative to the importer's folder, normalised; may start
    with ``..`` (climbing out) -- solc's rule for relative imports."""
    base = posixpath.dirname(importer)
    return posixpath.normpath(posixpath.join(base, rel)) if base else posixpath.normpath(rel)


@dataclass
class Job:
    """The sources of one compile: ``sources`` logical path -> text, the solc ``remappings``,
    the ``targets`` whose contracts are wanted, ``origins`` (logical path -> package spec),
    ``missing`` imports (``"importer: import"``) that no package provides and ``outside``
    imports (same form) that point outside the corpus -- an absolute path, a ``..`` climbing
    out of the package, a remapping target or a symbolic link leading elsewhere; they are
    never read."""

    sources: dict[str, str] = field(default_factory=dict)
    remappings: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


OUTSIDE = "import outside the corpus"  # the compile failure reason of a Job with ``outside``


def outside_message(entry: str) -> str:
    """The one-line failure message of a :attr:`Job.outside` entry ``"importer: import"``."""
    importer, _, imp = entry.partition(": ")
    return (
        f"{importer}: import {imp!r} points outside the corpus (its own files, the bundled "
        "packages, declared remappings); not read"
    )


_OUTSIDE = object()  # :meth:`ImportResolver._resolve`'s answer for an import leaving the corpus


class ImportResolver:
    """Resolves imports against a universe of packages (the bundled corpus plus any others).

    ``compatible(importer_text, imported_text)``: whether two files can be compiled together
    (their pragmas); it picks the version of an undeclared import (:meth:`default`). None: the
    newest version.

    Containment: an import resolves only to a file of the importing source's own package, of
    another package in the universe, or through a declared remapping into one of them; the
    file must lie inside that package's folder (:meth:`Package.inside`, symbolic links
    followed). Anything else lands in :attr:`Job.outside` and is never read.
    """

    def __init__(
        self, packages: Iterable[Package], *, compatible: Callable[[str, str], bool] | None = None
    ):
        self.packages = list(packages)
        self.compatible = compatible
        self._by_name: dict[str, list[Package]] = {}
        for p in self.packages:
            self._by_name.setdefault(p.name, []).append(p)
        self._names = sorted(self._by_name, key=len, reverse=True)
        self._texts: dict[tuple[int, str], str | None] = {}
        self._contained: dict[tuple[int, str], bool] = {}

    def _inside(self, pkg: Package, rel: str) -> bool:
        """:meth:`Package.inside` for a package on disk, once per resolver; True in memory
        (a key that is not there is simply missing: nothing is read)."""
        if pkg.files is not None:
            return True
        key = (id(pkg), rel)
        if key not in self._contained:
            self._contained[key] = pkg.inside(rel)
        return self._contained[key]

    def _read(self, pkg: Package, rel: str) -> str | None:
        """File text, read once per resolver (jobs share their imports' strings)."""
        key = (id(pkg), rel)
        if key not in self._texts:
            self._texts[key] = pkg.read(rel)
        return self._texts[key]

    def default(
        self, name: str, rel: str | None = None, importer_text: str | None = None
    ) -> Package | None:
        """The version an undeclared import of ``name`` means: the newest one that has ``rel``
        and whose copy of it the resolver's ``compatible(importer_text, its_text)`` accepts (the
        compile side passes :func:`evmlm.solc.versions.compatible_pragmas`, so ``pragma
        ^0.6.0`` importing OpenZeppelin gets 3.x, not 5.x); else the newest."""
        cands = sorted(
            self._by_name.get(name) or [], key=lambda p: _semver(p.version), reverse=True
        )
        if not cands:
            return None
        if rel is not None and importer_text is not None and self.compatible is not None:
            for p in cands:
                text = self._read(p, rel)
                if text is not None and self.compatible(importer_text, text):
                    return p
        return cands[0]

    def _package_target(self, target: str) -> tuple[Package, str] | None:
        """``"name@version/sub/"`` -> (that package, ``"sub/"``) when it names a known package."""
        for name in self._names:
            if target.startswith(name + "@"):
                ver, _, sub = target[len(name) + 1 :].partition("/")
                dep = self.find(name, ver)
                if dep is not None:
                    return dep, sub
        return None

    def find(self, name: str, version: str) -> Package | None:
        for p in self._by_name.get(name, ()):
            if p.version == version:
                return p
        return None

    def job(self, root: Package, rels: Sequence[str], *, remappings: Sequence[str] = ()) -> Job:
        """Build the job compiling ``rels`` (package-relative paths of ``root``) and their imports.

        ``remappings`` (solc syntax) apply first to files of an in-memory root (``root.files``),
        so a job's earlier ``CompileResult.sources`` + ``remappings`` compile again unchanged.
        """
        job = Job(remappings=list(remappings))

        def prefix(p: Package) -> str:
            if p is root:
                return f"{p.name}/" if p.name else ""
            return f"{p.name}@{p.version}/"

        seen: set[str] = set()
        queue: deque[tuple[str, Package, str, str | None]] = deque()
        for rel in rels:
            logical = prefix(root) + rel
            job.targets.append(logical)
            queue.append((logical, root, rel, None))
        remaps: dict[str, str] = {}
        while queue:
            logical, pkg, rel, via = queue.popleft()
            if logical in seen:
                continue
            text = self._read(pkg, rel)
            if text is None:
                if via not in job.missing:
                    job.missing.append(via or f"{logical}: file not found in {pkg.spec}")
                continue
            seen.add(logical)
            job.sources[logical] = text
            job.origins[logical] = pkg.spec
            for imp in imports_of(text):
                hit = self._resolve(root, pkg, logical, imp, prefix, remaps, job.remappings)
                if hit is _OUTSIDE or (hit is not None and not self._inside(hit[1], hit[2])):
                    job.outside.append(f"{logical}: {imp}")
                    continue
                if hit is None:
                    job.missing.append(f"{logical}: {imp}")
                    continue
                dep_logical, dep_pkg, dep_rel = hit
                if dep_logical not in seen:
                    queue.append((dep_logical, dep_pkg, dep_rel, f"{logical}: {imp}"))
        job.remappings.extend(
            f"{k}={v}" for k, v in sorted(remaps.items()) if f"{k}={v}" not in job.remappings
        )
        return job

    def _resolve(
        self,
        root: Package,
        pkg: Package,
        logical: str,
        imp: str,
        prefix: Callable[[Package], str],
        remaps: dict[str, str],
        given: Sequence[str],
    ) -> tuple[str, Package, str] | None | object:
        """(logical path, owning package, package-relative path) of ``imp`` imported by ``logical``
        (a file of ``pkg``), recording in ``remaps`` any solc remapping the choice needs; None
        when no package has it; :data:`_OUTSIDE` when it leaves the corpus (an absolute path or
        a ``..`` out of a package on disk). The caller still checks the answer's containment."""
        own = prefix(pkg)
        if pkg.files is not None and given:
            mapped = apply_remappings(
                given, logical, imp if not imp.startswith(".") else _join(logical, imp)
            )
            if mapped in pkg.files:
                return mapped, pkg, mapped
        on_disk = pkg.files is None
        if on_disk and imp.startswith("/"):
            return _OUTSIDE
        if imp.startswith("."):
            target = _join_raw(logical, imp)
            if target.startswith(own) and contained_rel(target[len(own) :]) is not None:
                return target, pkg, target[len(own) :]
            return _OUTSIDE if on_disk else None
        # package-internal remappings (e.g. bedrock's "src/" -> package "src/")
        best = None
        for a, b in pkg.remappings:
            if imp.startswith(a) and (best is None or len(a) > len(best[0])):
                best = (a, b)
        if best is not None:
            a, b = best
            other = self._package_target(b)
            if other is not None:  # remapped into another package: "prefix=name@version/sub/"
                dep, sub = other
                rel = posixpath.normpath(sub + imp[len(a) :]) if sub or imp[len(a) :] else ""
                target = prefix(dep)
                remaps[f"{own}:{a}" if own else a] = target + sub
                return target + rel, dep, rel
            rel = posixpath.normpath(b + imp[len(a) :])
            if own + b != a:  # solc must rewrite the import exactly as we did
                remaps[f"{own}:{a}" if own else a] = own + b
            return own + rel, pkg, rel
        if not pkg.name:  # unnamed package (dir, Etherscan, in-memory): own files first
            if on_disk and not self._inside(pkg, imp):
                return _OUTSIDE
            if self._read(pkg, imp) is not None:
                return imp, pkg, imp
        for name in self._names:
            if not name or not imp.startswith(name + "/"):
                continue
            if name == pkg.name:
                dep = pkg
            elif name == root.name and root.files is None:
                dep = root
            elif name in pkg.deps:
                dep = self.find(name, pkg.deps[name]) or self.default(name)
            elif name in root.deps:  # a dependency without its own pins uses the root package's
                dep = self.find(name, root.deps[name]) or self.default(name)
            else:
                dep = self.default(name, imp[len(name) + 1 :], self._read(pkg, logical[len(own) :]))
            if dep is None:
                return None
            target = prefix(dep)
            if target != name + "/":
                remaps[f"{own}:{name}/" if own else f"{name}/"] = target
            rel = imp[len(name) + 1 :]
            return target + rel, dep, rel
        return None
