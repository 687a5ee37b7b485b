"""A native ``solc`` on PATH is preferred when its version matches (here: a shim answering like solc)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from evmlm.solc import compile_sources
from evmlm.solc.versions import installed_compilers

SHIM = """#!/usr/bin/env bash
if [ "$1" = "--version" ]; then
  echo "solc, the solidity compiler commandline interface"
  echo "Version: 0.8.26+commit.8a97fa7a.Linux.g++"
  exit 0
fi
if [ "$1" = "--standard-json" ]; then
  echo called >> "{marker}"
  exec node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(require("{module}").compile(s)))'
fi
exit 1
"""


def test_native_solc_on_path_is_used_when_version_matches(tmp_path, monkeypatch):
    module = Path("node_modules/solc0826").resolve()
    marker = tmp_path / "calls.log"
    shim = tmp_path / "bin" / "solc"
    shim.parent.mkdir()
    shim.write_text(SHIM.replace("{marker}", str(marker)).replace("{module}", str(module)))
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    installed_compilers.cache_clear()
    try:
        native = [c for c in installed_compilers() if c.kind == "native"]
        assert [(c.version, c.location) for c in native] == [("0.8.26", str(shim))]
        r = compile_sources(
            {
                "A.sol": "pragma solidity 0.8.26;\ncontract A { function f() external pure returns (uint) { return 1; } }\n"
            }
        )
        assert r.version == "0.8.26" and r.contract("A").runtime_bytecode
        assert marker.read_text().count("called") == 1
    finally:
        monkeypatch.undo()
        installed_compilers.cache_clear()
