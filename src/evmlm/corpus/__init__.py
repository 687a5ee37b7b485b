"""Where Solidity comes from: bundled npm packages, a local directory, Etherscan, HF datasets.

The corpus stage writes ``corpus/manifest.jsonl`` (one entry per .sol file) and
``corpus/packages.json`` (the packages, for import resolution); :func:`iter_sources` reads it back.
"""

from __future__ import annotations

from evmlm.corpus.manifest import SourceFile, iter_sources, read_manifest, read_packages
from evmlm.corpus.packages import CorpusError, Package, excluded, npm_packages

__all__ = [
    "CorpusError",
    "Package",
    "SourceFile",
    "excluded",
    "iter_sources",
    "npm_packages",
    "read_manifest",
    "read_packages",
]
