"""Test helpers: compile a source with the real solc-js (node) without going through evmlm.solc."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "evaluate"

_JS = r"""
const solc = require(process.argv[1]);
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => process.stdout.write(solc.compile(input)));
"""


def solcjs_compile(sources: dict[str, str], *, module: str = "solc0826", optimize: bool = True) -> dict[str, Any]:
    """Standard-JSON compile through node + solc-js (0.6+ entry point); returns solc's output."""
    job = {
        "language": "Solidity",
        "sources": {p: {"content": t} for p, t in sources.items()},
        "settings": {
            "optimizer": {"enabled": optimize, "runs": 200},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers", "storageLayout"], "": ["ast"]}},
        },
    }
    proc = subprocess.run(["node", "-e", _JS, module], input=json.dumps(job), capture_output=True, text=True, cwd=ROOT, check=True, env={"NODE_PATH": str(ROOT / "node_modules"), "PATH": "/usr/bin:/usr/local/bin:/bin"})
    out = json.loads(proc.stdout)
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise AssertionError(errors[0]["formattedMessage"])
    return out


@pytest.fixture(scope="session")
def counter_source() -> str:
    return (FIXTURES / "Counter.sol").read_text()


@pytest.fixture(scope="session")
def solcjs():
    """The :func:`solcjs_compile` helper (tests have no package, so it comes as a fixture)."""
    return solcjs_compile
