#!/usr/bin/env python3
"""Fetch the bundled Solidity corpora pinned in package.json (key ``evmlmCorpus``).

Each entry ``"NAME@VERSION"`` is fetched with ``npm pack NAME@VERSION`` (a tarball, no install
scripts and no dependency resolution: several packages have git dependencies that make
``npm install`` fail) and unpacked into ``vendor/corpora/NAME@VERSION/``. A folder that holds a
``.evmlm-complete`` stamp is skipped, so the script is idempotent; an unpack goes to a
temporary folder first and is renamed into place, so a stopped run leaves nothing half-written.

Usage: ``.venv/bin/python scripts/fetch_corpora.py [--root DIR] [--jobs N] [NAME@VERSION ...]``
Exit status 1 when any package failed (the others are still fetched).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = ".evmlm-complete"


def split_spec(spec: str) -> tuple[str, str]:
    """``"@scope/name@1.2.3"`` -> ``("@scope/name", "1.2.3")``."""
    at = spec.rfind("@")
    if at <= 0:
        raise ValueError(f"{spec}: expected NAME@VERSION")
    return spec[:at], spec[at + 1 :]


def fetch_one(spec: str, dest_root: Path) -> str:
    """Fetch and unpack one package; returns a one-line status. Raises RuntimeError on failure."""
    name, version = split_spec(spec)
    target = dest_root / f"{name}@{version}"
    if (target / STAMP).is_file():
        return f"{spec}: present"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        tmpdir = Path(tmp)
        proc = subprocess.run(
            ["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", str(tmpdir)],
            capture_output=True,
            text=True,
            cwd=tmpdir,
            timeout=600,
        )
        tarballs = list(tmpdir.glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            msg = (proc.stderr.strip().splitlines() or ["no tarball"])[-1]
            raise RuntimeError(f"{spec}: npm pack failed: {msg}")
        unpack = tmpdir / "unpack"
        with tarfile.open(tarballs[0]) as tf:
            if hasattr(
                tarfile, "data_filter"
            ):  # Python >= 3.11.4: refuse links/paths outside the folder
                tf.extractall(unpack, filter="data")
            else:  # pragma: no cover
                tf.extractall(unpack)
        # npm tarballs hold one top folder (usually "package/").
        tops = [p for p in unpack.iterdir()]
        src = tops[0] if len(tops) == 1 and tops[0].is_dir() else unpack
        (src / STAMP).write_text(f"{spec}\n")
        if target.exists():
            shutil.rmtree(target)
        src.rename(target)
    n = sum(1 for _ in target.rglob("*.sol"))
    return f"{spec}: fetched ({n} .sol files)"


def corpus_specs(package_json: Path) -> list[str]:
    data = json.loads(package_json.read_text())
    corpus = data.get("evmlmCorpus")
    if not isinstance(corpus, dict):
        raise SystemExit(f"{package_json}: no evmlmCorpus mapping")
    return list(corpus)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "specs", nargs="*", help="NAME@VERSION (default: all of package.json evmlmCorpus)"
    )
    ap.add_argument("--root", type=Path, default=ROOT / "vendor" / "corpora")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args(argv)
    specs = args.specs or corpus_specs(ROOT / "package.json")
    failed = 0
    fetched = 0

    def task(spec: str) -> tuple[bool, str]:
        try:
            return True, fetch_one(spec, args.root)
        except (
            RuntimeError,
            subprocess.TimeoutExpired,
            OSError,
            tarfile.TarError,
            ValueError,
        ) as e:
            return False, str(e).splitlines()[0]

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for ok, line in pool.map(task, specs):
            if not ok:
                failed += 1
                print(f"error: {line}", file=sys.stderr)
            elif "fetched" in line:
                fetched += 1
                print(line)
    print(
        f"corpora: {len(specs)} packages, {fetched} fetched, {len(specs) - fetched - failed} present, {failed} failed -> {args.root}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
