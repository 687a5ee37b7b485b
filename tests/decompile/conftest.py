"""Decompile test helpers: real solc-js (node) compile and parse-only checks, a tiny model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIGGY = ROOT / "tests" / "fixtures" / "evaluate" / "Piggy.sol"

_JS = r"""
const solc = require(process.argv[1]);
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => process.stdout.write(solc.compile(input)));
"""


def _solcjs(sources: dict[str, str], *, stop_after_parsing: bool = False, module: str = "solc0826") -> dict[str, Any]:
    """solc-js standard-JSON output (full compile, or parse only)."""
    settings: dict[str, Any] = {"outputSelection": {"*": {"*": ["abi", "evm.deployedBytecode.object", "storageLayout"]}}, "optimizer": {"enabled": True, "runs": 200}}
    if stop_after_parsing:
        settings = {"stopAfter": "parsing", "outputSelection": {"*": {"": ["ast"]}}}
    job = {"language": "Solidity", "sources": {p: {"content": t} for p, t in sources.items()}, "settings": settings}
    proc = subprocess.run(["node", "-e", _JS, module], input=json.dumps(job), capture_output=True, text=True, cwd=ROOT, check=True, env={"NODE_PATH": str(ROOT / "node_modules"), "PATH": "/usr/bin:/usr/local/bin:/bin"})
    return json.loads(proc.stdout)


def _solc_errors(out: dict[str, Any]) -> list[str]:
    return [e["formattedMessage"] for e in out.get("errors", []) if e.get("severity") == "error"]


@pytest.fixture(scope="session")
def solcjs():
    """solc-js standard-JSON compile (or ``stop_after_parsing=True``: parse only) through node."""
    return _solcjs


@pytest.fixture(scope="session")
def piggy() -> dict[str, Any]:
    """Piggy.sol (written for these tests, outside the corpus) compiled with solc 0.8.26."""
    out = _solcjs({"Piggy.sol": PIGGY.read_text()})
    assert not _solc_errors(out), _solc_errors(out)
    return out["contracts"]["Piggy.sol"]["Piggy"]


@pytest.fixture(scope="session")
def tiny_model_dir(make_tiny_model) -> Path:
    """An untrained ~1M-parameter Llama (preset ``tiny``) + BPE tokenizer trained on a few files."""
    return make_tiny_model(PIGGY.read_text())
