"""Pairing groups: results that share one loaded compile result's sources and ASTs."""

from __future__ import annotations

import json
from pathlib import Path

from evmlm.dataset.build import _index_groups


def test_same_path_and_solc_in_two_package_versions_are_two_groups(tmp_path: Path) -> None:
    """@openzeppelin/contracts 4.9.6 and 5.7.0 both ship finance/VestingWallet.sol; compiled by
    the same solc they were one group, and 4.9.6's pairs got 5.7.0's byte offsets and text."""
    path = "@openzeppelin/contracts/finance/VestingWallet.sol"
    rows = [
        {
            "key": "a",
            "path": path,
            "solc": "0.8.37",
            "package": "@openzeppelin/contracts",
            "version": "4.9.6",
            "setting": "opt200",
            "status": "ok",
        },
        {
            "key": "b",
            "path": path,
            "solc": "0.8.37",
            "package": "@openzeppelin/contracts",
            "version": "5.7.0",
            "setting": "opt200",
            "status": "ok",
        },
        {
            "key": "c",
            "path": path,
            "solc": "0.8.37",
            "package": "@openzeppelin/contracts",
            "version": "5.7.0",
            "setting": "noopt",
            "status": "ok",
        },
    ]
    (tmp_path / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    groups = _index_groups(tmp_path)
    assert groups["a"][0] != groups["b"][0]
    assert (
        groups["b"][0] == groups["c"][0] and groups["c"][1] == "noopt"
    )  # settings of one file still share
