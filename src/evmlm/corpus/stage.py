"""The corpus stage: collect Solidity files from the configured sources into one manifest.

Writes ``corpus/manifest.jsonl`` (see :mod:`evmlm.corpus.manifest`), ``corpus/packages.json``
and, for Etherscan / HF sources, their files under ``corpus/sources/<source>/<id>/``.
Tests, mocks and scripts are excluded by rule (:func:`evmlm.corpus.packages.excluded`);
dependency-only packages are recorded in packages.json but not in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from evmlm import atomic
from evmlm.config import CorpusConfig
from evmlm.corpus.manifest import MANIFEST, PACKAGES
from evmlm.corpus.packages import (
    CorpusError,
    Package,
    check_fetched,
    excluded,
    npm_packages,
    parse_remappings,
)
from evmlm.corpus.source_text import pragmas

log = logging.getLogger(__name__)

_SPDX = re.compile(r"SPDX-License-Identifier:\s*([^\s*]+)")


def manifest_entry(pkg: Package, rel: str) -> dict[str, Any]:
    """The manifest record of one package file."""
    text = pkg.read(rel) or ""
    data = text.encode("utf-8")
    spdx = _SPDX.search(text[:2000])
    disk = pkg.disk_path(rel)
    return {
        "path": f"{pkg.name}/{rel}" if pkg.name else rel,
        "rel": rel,
        "file": str(disk) if disk is not None else "",
        "package": pkg.name,
        "version": pkg.version,
        "license": spdx.group(1) if spdx else pkg.license,
        "sha256": hashlib.sha256(data).hexdigest(),
        "pragma": "; ".join(pragmas(text)),
        "source": pkg.source,
    }


def collect_packages(cfg: CorpusConfig, out_dir: Path) -> list[Package]:
    """The packages the configured sources provide (npm corpus packages always included for imports)."""
    all_npm = list(npm_packages())
    wanted = set(cfg.npm_packages)
    unknown = wanted - {p.spec for p in all_npm}
    if unknown:
        raise CorpusError(
            f"corpus.npm_packages: {', '.join(sorted(unknown))} not in package.json evmlmCorpus"
        )
    packages: list[Package] = []
    for p in all_npm:
        in_corpus = "npm" in cfg.sources and not p.dependency and (not wanted or p.spec in wanted)
        packages.append(p if in_corpus or p.dependency else _as_dependency(p))
    if "npm" in cfg.sources:  # other sources only borrow npm packages for imports when present
        check_fetched(tuple(packages))
    else:
        packages = [p for p in packages if p.root is not None and p.root.is_dir()]
    if "dir" in cfg.sources:
        root = Path(cfg.directory or "").expanduser().resolve()
        if not root.is_dir():
            raise CorpusError(f"corpus.directory: {cfg.directory} is not a folder of .sol files")
        packages.append(
            Package(
                name="",
                version="local",
                root=root,
                remappings=parse_remappings(cfg.remappings, where="corpus.remappings"),
                source="dir",
                license=None,
            )
        )
    if "etherscan" in cfg.sources:
        from evmlm.corpus.etherscan import etherscan_packages

        packages.extend(etherscan_packages(cfg, out_dir / "sources" / "etherscan"))
    if "hf" in cfg.sources:
        from evmlm.corpus.hf import hf_packages

        packages.extend(hf_packages(cfg, out_dir / "sources" / "hf"))
    return packages


def _as_dependency(p: Package) -> Package:
    from dataclasses import replace

    return replace(p, dependency=True)


def build_manifest(
    packages: Iterable[Package], max_files: int | None = None
) -> tuple[list[dict[str, Any]], Counter]:
    """Manifest entries for every non-excluded .sol file of every corpus package, sorted by path
    (then package, version); the first ``max_files`` when given. Returns (entries, exclusion counts)."""
    entries: list[dict[str, Any]] = []
    why: Counter = Counter()
    for pkg in packages:
        if pkg.dependency:
            continue
        for rel in pkg.sol_files():
            reason = excluded(rel)
            if reason:
                why[reason] += 1
                continue
            entries.append(manifest_entry(pkg, rel))
    entries.sort(key=lambda e: (e["path"], e["package"], e["version"]))
    if max_files is not None:
        entries = entries[:max_files]
    return entries, why


def run_stage(ctx: Any) -> dict[str, Any]:
    """Pipeline entry: write the manifest and packages record; return the summary."""
    cfg: CorpusConfig = ctx.config.corpus
    out = Path(ctx.stage_dir)
    packages = collect_packages(cfg, out)
    entries, why = build_manifest(packages, cfg.max_files)
    if not entries:
        raise CorpusError(
            "corpus: no .sol files found in the configured sources (corpus.sources); check the config and run scripts/setup.sh"
        )
    atomic.write_json(out / PACKAGES, [p.to_json() for p in packages])
    atomic.write_text(
        out / MANIFEST, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
    )
    by_pkg = Counter(f"{e['package'] or e['source']}@{e['version']}" for e in entries)
    n_lines = sum((Path(e["file"]).read_bytes().count(b"\n") if e["file"] else 0) for e in entries)
    line = f"{len(entries)} files ({n_lines:,} lines) from {len(by_pkg)} packages; excluded {sum(why.values())} ({', '.join(f'{k}: {v}' for k, v in why.most_common(4))})"
    log.info("corpus: %s", line)
    return {
        "line": line,
        "files": len(entries),
        "packages": dict(by_pkg),
        "excluded": dict(why),
        "lines": n_lines,
    }


def input_digest(config: Any) -> str:
    """Digest of the corpus stage's outside inputs, for the run chain's skip check: package.json's
    ``evmlmCorpus`` (pinned npm packages are immutable), the local directory's files (path, size,
    mtime in ns) and the Etherscan address file. Etherscan/HF answers are cached, so their config
    (already hashed) stands for them."""
    cfg: CorpusConfig = config.corpus
    h = hashlib.sha256()
    try:
        h.update(json.dumps([p.to_json() for p in npm_packages()], sort_keys=True).encode())
    except CorpusError:
        h.update(b"no-npm")
    if "dir" in cfg.sources and cfg.directory:
        root = Path(cfg.directory).expanduser()
        for p in sorted(root.rglob("*.sol")) if root.is_dir() else []:
            st = p.stat()
            h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    if cfg.etherscan_address_file and Path(cfg.etherscan_address_file).is_file():
        h.update(Path(cfg.etherscan_address_file).read_bytes())
    return h.hexdigest()
