"""The Panoramix decompiler as a baseline, run in its own venv as a subprocess.

Panoramix (``panoramix-decompiler==0.6.1``) is installed by ``scripts/setup_panoramix.sh`` into
``.venv-panoramix`` because its pinned dependencies clash with evmlm's. Each contract is
decompiled by ``panoramix_runner.py`` in that venv, which adds PUSH0 (EIP-3855) to Panoramix's
opcode table and replaces its signature database with the signatures passed in (the bundled
one unpacks to 846 MB and breaks on ``dbm.dumb``; docs/architecture.md, "Bytecode tools").

Usage (also from benchmarks)::

    from evmlm.evaluate.baselines.panoramix import decompile_panoramix
    texts = decompile_panoramix(runtime_hex, timeout_s=30.0)   # {"0xa9059cbb": "def transfer(...) ...", ...}
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Mapping

from evmlm.corpus.packages import repo_root
from evmlm.evaluate.errors import BaselineError

log = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("panoramix_runner.py")


class PanoramixTimeout(BaselineError):
    """Panoramix did not finish one contract within the timeout."""


class PanoramixFailed(BaselineError):
    """Panoramix crashed on one contract (its message is the first line of the crash)."""


def panoramix_python() -> Path:
    """The Python of the Panoramix venv: ``$EVMLM_PANORAMIX_PYTHON``, else ``.venv-panoramix`` in
    the project root (:func:`evmlm.corpus.packages.repo_root`, where ``scripts/setup_panoramix.sh``
    puts it) or the current directory. Raises :class:`BaselineError` when none exists."""
    env = os.environ.get("EVMLM_PANORAMIX_PYTHON")
    cands = [Path(env)] if env else []
    cands += [d / ".venv-panoramix" / "bin" / "python" for d in (repo_root(), Path.cwd())]
    for c in cands:
        if c.is_file():
            return c
    raise BaselineError(
        "Panoramix is not installed (.venv-panoramix missing); run scripts/setup_panoramix.sh"
    )


def cache_dir() -> Path:
    """Panoramix's cache folder (its ``XDG_CACHE_HOME``): ``.cache/panoramix`` in the project
    root (:func:`evmlm.corpus.packages.repo_root`), never inside the installed package."""
    return repo_root() / ".cache" / "panoramix"


def is_available() -> bool:
    """True when the Panoramix venv exists."""
    try:
        panoramix_python()
    except BaselineError:
        return False
    return True


def decompile_panoramix(
    bytecode_hex: str, timeout_s: float = 30.0, signatures: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Decompile runtime bytecode with Panoramix: selector (``"0xa9059cbb"``) → function text.

    ``bytecode_hex``: runtime bytecode, hex (0x optional); ``timeout_s``: wall-clock limit for
    the whole contract (seconds); ``signatures``: selector → text signature to name functions
    and arguments (None: unnamed, as ``unknown<selector>``). The fallback function, when
    decompiled, is under the key ``"_fallback"``. Results are cached in memory per input.

    Raises :class:`BaselineError` when Panoramix is not installed, :class:`PanoramixTimeout`
    past ``timeout_s`` and :class:`PanoramixFailed` when it crashes.
    """
    sigs = tuple(sorted((k.lower(), v) for k, v in (signatures or {}).items()))
    return dict(_decompile_cached(bytecode_hex.lower().removeprefix("0x"), float(timeout_s), sigs))


@functools.lru_cache(maxsize=256)
def _decompile_cached(
    code: str, timeout_s: float, sigs: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    py = panoramix_python()
    job = json.dumps({"bytecode": code, "signatures": dict(sigs)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    env["XDG_CACHE_HOME"] = str(cache)  # Panoramix writes its caches there
    digest = hashlib.sha256(code.encode()).hexdigest()[:12]
    try:
        # run the runner's source with -c from a neutral folder: run as a file, its folder (which
        # holds this module, also named panoramix) would shadow the panoramix package
        proc = subprocess.run(
            [str(py), "-c", RUNNER.read_text()],
            input=job,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            cwd=cache,
        )
    except subprocess.TimeoutExpired as e:
        raise PanoramixTimeout(
            f"Panoramix timed out after {timeout_s:.0f} s on bytecode {digest}; raise the timeout or skip it"
        ) from e
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PanoramixFailed(f"Panoramix failed on bytecode {digest}: {last}")
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise PanoramixFailed(f"Panoramix printed no result for bytecode {digest} ({e.msg})") from e
    log.debug(
        "panoramix %s: %d functions, problems %s", digest, len(out["functions"]), out["problems"]
    )
    return tuple(sorted(out["functions"].items()))
