"""The corpus manifest: ``corpus/manifest.jsonl``, one JSON object per .sol file.

Fields: ``path`` (logical import path, e.g. ``@openzeppelin/contracts/token/ERC20/ERC20.sol``),
``rel`` (path inside its package), ``file`` (where the bytes are on disk), ``package``,
``version``, ``license`` (SPDX identifier of the file, else the package's licence, else null),
``sha256`` (of the file's bytes), ``pragma`` (the ``pragma solidity`` expressions joined by
``"; "``), ``source`` (npm, dir, etherscan, hf). ``corpus/packages.json`` lists the packages
(with their dependency versions and remappings) so the compile stage can resolve imports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from evmlm.corpus.packages import CorpusError, Package

MANIFEST = "manifest.jsonl"
PACKAGES = "packages.json"


@dataclass(frozen=True)
class SourceFile:
    """One corpus file as read back from the manifest (``text`` is read from ``file``)."""

    path: str
    package: str
    version: str
    text: str
    sha256: str
    file: str
    license: str | None
    pragma: str


def read_manifest(corpus_dir: str | Path) -> list[dict]:
    """The manifest entries of a corpus stage folder. Raises CorpusError when it is missing."""
    p = Path(corpus_dir) / MANIFEST
    if not p.is_file():
        raise CorpusError(f"{p}: no corpus manifest; run `evmlm corpus` first")
    with open(p, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_packages(corpus_dir: str | Path) -> list[Package]:
    """The packages recorded by the corpus stage (including dependency-only ones)."""
    p = Path(corpus_dir) / PACKAGES
    if not p.is_file():
        raise CorpusError(f"{p}: no packages record; run `evmlm corpus` first")
    return [Package.from_json(d) for d in json.loads(p.read_text())]


def iter_sources(corpus_dir: str | Path) -> Iterator[SourceFile]:
    """Yield every manifest entry with its text (UTF-8, undecodable bytes replaced)."""
    for e in read_manifest(corpus_dir):
        text = Path(e["file"]).read_text(encoding="utf-8", errors="replace")
        yield SourceFile(
            path=e["path"],
            package=e["package"],
            version=e["version"],
            text=text,
            sha256=e["sha256"],
            file=e["file"],
            license=e.get("license"),
            pragma=e.get("pragma", ""),
        )
