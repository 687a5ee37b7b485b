"""Solidity packages: a named, versioned folder of .sol files with its import remappings.

The bundled corpora are npm packages pinned in ``package.json`` under ``evmlmCorpus``::

    "evmlmCorpus": {
      "@uniswap/v3-periphery@1.4.4": {"deps": {"@openzeppelin/contracts": "3.4.2-solc-0.7"}},
      "@eth-optimism/contracts-bedrock@0.17.3": {"remappings": ["src/=src/"]},
      "@openzeppelin/contracts@4.7.3": {"dependency": true}
    }

``deps`` maps an imported package name to the exact version that package's imports mean
(the versioned dependency folder); ``remappings`` are package-internal solc remappings
``prefix=target`` with ``target`` relative to the package root; ``dependency: true`` marks a
package that is only there to satisfy imports and is not part of the corpus.
``scripts/fetch_corpora.py`` unpacks each entry into ``vendor/corpora/NAME@VERSION/``.

Exclusion rules (:func:`excluded`) keep tests, mocks, scripts, build output and vendored
third-party copies out of the corpus.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator, Mapping

from evmlm.errors import EvmlmError


class CorpusError(EvmlmError):
    """A corpus source is missing or malformed (the message names it and the fix)."""


# Folder names whose contents are not production contracts.
EXCLUDED_DIRS = frozenset(
    {
        "test",
        "tests",
        "testing",
        "test-helpers",
        "test_helpers",
        "testhelpers",
        "test-utils",
        "testutils",
        "mock",
        "mocks",
        "script",
        "scripts",
        "echidna",
        "fuzz",
        "fuzzing",
        "certora",
        "harness",
        "harnesses",
        "invariants",
        "node_modules",
        "build",
        "artifacts",
        "dist",
        "out",
        "cache",
        "typechain",
        "forge-std",
        "vendor",
        "external-deps",
        "examples-tests",
    }
)
_EXCLUDED_STEM = re.compile(
    r"^(Mock|Test|Fuzz|Echidna)(?=[A-Z_0-9]|$)|(Mock|Mocks|Test|Tests|Harness|Helper|Helpers)$"
)


def excluded(rel_path: str) -> str | None:
    """Why a package-relative path is not part of the corpus, or None when it is.

    Rules: not a ``.sol`` file; Foundry test/script files (``*.t.sol``, ``*.s.sol``); a top-level
    ``lib/`` (Foundry's vendored dependencies); any folder in :data:`EXCLUDED_DIRS` (case-insensitive); a file stem starting with Mock/Test/Fuzz/Echidna
    or ending in Mock/Test/Tests/Harness/Helper(s).
    """
    p = PurePosixPath(rel_path)
    if p.suffix != ".sol":
        return "not .sol"
    if p.name.endswith((".t.sol", ".s.sol")):
        return "foundry test/script"
    if len(p.parts) > 1 and p.parts[0] == "lib":  # Foundry's vendored dependencies (git submodules)
        return "folder lib/"
    for part in p.parts[:-1]:
        if part.lower() in EXCLUDED_DIRS:
            return f"folder {part}/"
    if _EXCLUDED_STEM.search(p.stem):
        return "test/mock file name"
    return None


_REAL_ROOTS: dict[Path, Path] = {}  # package root -> its real path (symlinks resolved), asked often


def contained_rel(rel: str) -> str | None:
    """``rel`` normalised (``a/./b`` -> ``a/b``) when it is a relative POSIX path that stays
    inside its folder; None when it is empty, absolute, climbs out with ``..`` or holds a NUL
    (no file may be named so)."""
    if not rel or "\0" in rel or rel.startswith("/"):
        return None
    norm = posixpath.normpath(rel)
    if norm in (".", "..") or norm.startswith("../"):
        return None
    return norm


@dataclass(frozen=True)
class Package:
    """A folder of Solidity sources importable as ``name/...``.

    ``root``: the folder on disk (or None for in-memory ``files``). ``deps``: imported package
    name -> exact version. ``remappings``: package-internal ``(prefix, target)`` pairs, target
    relative to the package root. ``source``: where it came from (npm, dir, etherscan, hf).
    """

    name: str
    version: str
    root: Path | None = None
    deps: Mapping[str, str] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    dependency: bool = False
    license: str | None = None
    source: str = "npm"
    files: Mapping[str, str] | None = None

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    def read(self, rel: str) -> str | None:
        """Text of a package-relative file, or None when it does not exist or lies outside the
        package (:meth:`inside` is False): a read never leaves ``root``."""
        if self.files is not None:
            return self.files.get(rel)
        if self.root is None or not self.inside(rel):
            return None
        p = self.root / rel
        try:
            return p.read_text(encoding="utf-8", errors="replace") if p.is_file() else None
        except OSError:
            return None

    def inside(self, rel: str) -> bool:
        """Whether ``rel`` names a place inside the package: for in-memory ``files``, a key of
        them; on disk, a relative path (:func:`contained_rel`) that, symbolic links followed,
        stays under ``root``. A path that does not exist yet but would stay inside counts."""
        if self.files is not None:
            return rel in self.files
        if self.root is None or contained_rel(rel) is None:
            return False
        real_root = self._real_root()
        try:
            return (self.root / rel).resolve().is_relative_to(real_root)
        except (OSError, RuntimeError):  # a symlink loop
            return False

    def _real_root(self) -> Path:
        assert self.root is not None
        real = _REAL_ROOTS.get(self.root)
        if real is None:
            real = _REAL_ROOTS[self.root] = self.root.resolve()
        return real

    def disk_path(self, rel: str) -> Path | None:
        return None if self.root is None else self.root / rel

    def sol_files(self) -> Iterator[str]:
        """Package-relative paths of every .sol file, sorted. On disk, a file whose symbolic
        link points outside ``root`` is left out (:meth:`inside`)."""
        if self.files is not None:
            yield from sorted(k for k in self.files if k.endswith(".sol"))
            return
        if self.root is None or not self.root.is_dir():
            return
        found = [
            Path(d) / f for d, _, files in os.walk(self.root) for f in files if f.endswith(".sol")
        ]  # linked folders not entered
        for p in sorted(found):
            rel = p.relative_to(self.root).as_posix()
            if p.is_file() and (not p.is_symlink() or self.inside(rel)):
                yield rel

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "root": str(self.root) if self.root else None,
            "deps": dict(self.deps),
            "remappings": [f"{a}={b}" for a, b in self.remappings],
            "dependency": self.dependency,
            "license": self.license,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, d: Mapping) -> "Package":
        return cls(
            name=d["name"],
            version=d["version"],
            root=Path(d["root"]) if d.get("root") else None,
            deps=dict(d.get("deps") or {}),
            remappings=parse_remappings(d.get("remappings") or (), where=d["name"]),
            dependency=bool(d.get("dependency")),
            license=d.get("license"),
            source=d.get("source", "npm"),
        )


def parse_remappings(items: object, *, where: str) -> tuple[tuple[str, str], ...]:
    """``["prefix=target", ...]`` -> pairs. Raises CorpusError naming ``where`` for a malformed entry."""
    out = []
    for r in items or ():  # type: ignore[union-attr]
        if not isinstance(r, str) or "=" not in r or r.startswith("="):
            raise CorpusError(f"{where}: remapping {r!r} is not of the form prefix=target")
        a, b = r.split("=", 1)
        out.append((a, b))
    return tuple(out)


def split_spec(spec: str) -> tuple[str, str]:
    """``"@scope/name@1.2.3"`` -> ``("@scope/name", "1.2.3")``. Raises CorpusError."""
    at = spec.rfind("@")
    if at <= 0:
        raise CorpusError(f"{spec}: expected NAME@VERSION")
    return spec[:at], spec[at + 1 :]


def repo_root() -> Path:
    """The folder holding package.json (the working directory, or the checkout of this package)."""
    for p in [Path.cwd(), *Path(__file__).resolve().parents]:
        if (p / "package.json").is_file() and (p / "src" / "evmlm").is_dir():
            return p
    return Path.cwd()


def _license_of(root: Path) -> str | None:
    try:
        lic = json.loads((root / "package.json").read_text()).get("license")
        return lic if isinstance(lic, str) else None
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=4)
def _npm_packages_cached(package_json: str, vendor: str) -> tuple[Package, ...]:
    pj = Path(package_json)
    try:
        data = json.loads(pj.read_text())
    except (OSError, ValueError) as e:
        raise CorpusError(f"{pj}: cannot read package.json ({e})") from e
    entries = data.get("evmlmCorpus")
    if not isinstance(entries, dict):
        raise CorpusError(f"{pj}: no evmlmCorpus mapping of NAME@VERSION -> options")
    out = []
    for spec, opts in entries.items():
        name, version = split_spec(spec)
        opts = opts or {}
        root = Path(vendor) / f"{name}@{version}"
        out.append(
            Package(
                name=name,
                version=version,
                root=root,
                deps=dict(opts.get("deps") or {}),
                remappings=parse_remappings(opts.get("remappings") or (), where=spec),
                dependency=bool(opts.get("dependency")),
                license=_license_of(root),
                source="npm",
            )
        )
    return tuple(out)


def npm_packages(
    package_json: Path | None = None, vendor: Path | None = None
) -> tuple[Package, ...]:
    """The bundled corpus packages from package.json ``evmlmCorpus`` (dependency-only ones included).

    Raises CorpusError when package.json has no ``evmlmCorpus``.
    """
    root = repo_root()
    pj = (package_json or root / "package.json").resolve()
    vd = (vendor or root / "vendor" / "corpora").resolve()
    return _npm_packages_cached(str(pj), str(vd))


def check_fetched(packages: tuple[Package, ...]) -> None:
    """Raise CorpusError when a package folder is missing (tell the user to run the fetch script)."""
    missing = [
        p.spec for p in packages if p.root is not None and p.files is None and not p.root.is_dir()
    ]
    if missing:
        raise CorpusError(
            f"corpus packages not fetched: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}; run `python scripts/fetch_corpora.py` (or scripts/setup.sh)"
        )
