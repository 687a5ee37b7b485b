"""`evmlm lift` end to end (a subprocess, as a user runs it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import load_fixture


def _lift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evmlm", "lift", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )


def test_lift_artifact_file_by_signature_and_json(tmp_path: Path) -> None:
    c = load_fixture("oz496_erc20_0826_opt200")
    art = tmp_path / "MyToken.json"
    art.write_text(
        json.dumps(
            {
                "deployedBytecode": "0x" + c["runtime_bytecode"],
                "abi": c["abi"],
                "storageLayout": c["storage_layout"],
            }
        )
    )
    r = _lift(str(art), "--signature", "transfer(address, uint256)")
    assert r.returncode == 0, r.stderr
    assert (
        r.stdout.startswith("function 0xa9059cbb transfer(address,uint256)\n")
        and "SLOAD(_balances[" in r.stdout
    )
    assert "11 public" in r.stderr and "0 unresolved jumps" in r.stderr
    j = _lift(str(art), "--selector", "0x70a08231", "--format", "json")
    d = json.loads(j.stdout)
    assert [f["signature"] for f in d["functions"]] == ["balanceOf(address)"] and d[
        "unresolved_jumps"
    ] == 0


def test_lift_hex_with_storage_layout_file(tmp_path: Path) -> None:
    c = load_fixture("oz496_erc20_0826_opt200")
    layout = tmp_path / "layout.json"
    layout.write_text(json.dumps(c["storage_layout"]))
    r = _lift(
        "0x" + c["runtime_bytecode"],
        "--storage-layout",
        str(layout),
        "--selector",
        "0x18160ddd",
        "--no-internal",
    )
    assert r.returncode == 0, r.stderr
    # No ABI: the signature comes from the built-in table of well-known selectors.
    assert "SLOAD(_totalSupply)" in r.stdout and r.stdout.startswith(
        "function 0x18160ddd totalSupply() view\n"
    )
    assert "function internal_" not in r.stdout


def test_lift_errors_are_one_line(tmp_path: Path) -> None:
    for args, words in (
        (["0x60zz"], "not hex"),
        ([str(tmp_path / "missing.hex")], "nor an existing file"),
        (["0x6000", "--selector", "0x12345678"], "not in this contract"),
    ):
        r = _lift(*args)
        assert r.returncode == 2 and words in r.stderr and r.stderr.strip().count("\n") == 0, (
            r.stderr
        )
