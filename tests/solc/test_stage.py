"""The corpus and compile stages through the run chain, on a small local directory corpus."""

from __future__ import annotations

import json
from pathlib import Path

from evmlm.config import load_config
from evmlm.corpus import iter_sources
from evmlm.pipeline import STAGES, run_pipeline, run_stage
from evmlm.solc.stage import iter_results, load_result, read_index

FILES = {
    "contracts/Vault.sol": 'pragma solidity ^0.8.0;\nimport "./lib/Math.sol";\nimport "@openzeppelin/contracts/access/Ownable.sol";\n'
    "contract Vault is Ownable { uint256 public total; constructor() Ownable(msg.sender) {}\n"
    " function deposit(uint256 a) external onlyOwner { total = Math.add(total, a); } }\n",
    "contracts/lib/Math.sol": "pragma solidity ^0.8.0;\nlibrary Math { function add(uint a, uint b) internal pure returns (uint) { return a + b; } }\n",
    "contracts/Old.sol": "pragma solidity ^0.5.0;\ncontract Old { uint public x; function set(uint v) public { x = v; } }\n",
    "contracts/Broken.sol": "pragma solidity ^0.8.0;\ncontract Broken { function f() public { nope(); } }\n",
    "contracts/Clash.sol": 'pragma solidity ^0.7.0;\nimport "./lib/Math.sol";\ncontract Clash {}\n',
    "contracts/Legacy.sol": "pragma solidity >=0.6.0 <0.8.0;\ncontract Legacy { function t() public view returns (uint) { return now; } }\n",
    "contracts/mocks/VaultMock.sol": "pragma solidity ^0.8.0;\ncontract VaultMock {}\n",
    "test/Vault.t.sol": "pragma solidity ^0.8.0;\ncontract VaultTest {}\n",
}


def _corpus(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _config(tmp_path: Path, root: Path, **extra: object):
    return load_config(
        None,
        {
            "run.runs_dir": str(tmp_path / "runs"),
            "run.name": "t",
            "corpus.sources": ["dir"],
            "corpus.directory": str(root),
            "compile.settings": ["noopt", "ir200"],
            "compile.workers": 1,
            **extra,
        },
    )


def test_corpus_and_compile_stages_and_skip_when_current(tmp_path):
    root = _corpus(tmp_path)
    cfg = _config(tmp_path, root)
    recs = run_pipeline(cfg, until="compile")
    assert [r["stage"] for r in recs] == ["corpus", "compile"] and not any(
        r["skipped"] for r in recs
    )
    corpus_dir, compile_dir = cfg.run_dir / "corpus", cfg.run_dir / "compile"

    files = {s.path: s for s in iter_sources(corpus_dir)}
    assert set(files) == {
        "contracts/Vault.sol",
        "contracts/lib/Math.sol",
        "contracts/Old.sol",
        "contracts/Broken.sol",
        "contracts/Clash.sol",
        "contracts/Legacy.sol",
    }
    assert (
        files["contracts/Old.sol"].pragma == "^0.5.0"
        and files["contracts/Old.sol"].text == FILES["contracts/Old.sol"]
    )

    index = {(r["path"], r["setting"]): r for r in read_index(compile_dir)}
    assert index[("contracts/Vault.sol", "noopt")]["status"] == "ok"
    assert index[("contracts/Vault.sol", "ir200")]["status"] == "ok"
    assert index[("contracts/Old.sol", "noopt")]["solc"].startswith("0.5.")
    assert index[("contracts/Old.sol", "ir200")]["status"] == "skipped"  # via-IR needs >= 0.8.13
    broken = index[("contracts/Broken.sol", "noopt")]
    assert (
        broken["status"] == "failed"
        and broken["reason"] == "DeclarationError"
        and "nope" in broken["message"]
    )
    clash = index[("contracts/Clash.sol", "noopt")]
    assert (
        clash["status"] == "failed"
        and clash["reason"] == "conflicting pragmas"
        and "Math.sol" in clash["message"]
    )

    legacy = index[
        ("contracts/Legacy.sol", "noopt")
    ]  # `now` is gone in 0.7: retried with the oldest allowed solc
    assert legacy["status"] == "ok" and legacy["fallback"] and legacy["solc"].startswith("0.6.")

    summary = recs[1]["summary"]
    assert (
        summary["files"] == 6
        and summary["files_ok"] == 4
        and summary["files_failed_by_reason"] == {"DeclarationError": 1, "conflicting pragmas": 1}
    )
    assert "4/6 files compiled under >=1 setting (66.67%)" in summary["line"]

    vault = load_result(compile_dir, index[("contracts/Vault.sol", "noopt")]["key"])
    assert vault.contract("Vault").method_identifiers["deposit(uint256)"]
    assert any(
        p.startswith("@openzeppelin/contracts@") for p in vault.sources
    )  # bundled corpus import
    assert set(vault.source_ids) == set(vault.asts) == set(vault.sources)
    keys = {r.key for r in iter_results(compile_dir)}
    assert len(keys) == summary["jobs_ok"] == 6

    again = run_pipeline(cfg, until="compile")
    assert all(r["skipped"] for r in again)

    # a changed source file makes the corpus (and so the compile stage) stale
    (root / "contracts/Old.sol").write_text(FILES["contracts/Old.sol"] + "// changed\n")
    third = run_pipeline(cfg, until="compile")
    assert not third[0]["skipped"] and not third[1]["skipped"]
    assert third[1]["summary"]["files_ok"] == 4


def test_compile_rerun_uses_the_cache(tmp_path):
    root = _corpus(tmp_path)
    cfg = _config(tmp_path, root, **{"compile.settings": ["opt200"]})
    run_pipeline(cfg, until="compile")
    index1 = (cfg.run_dir / "compile" / "index.jsonl").read_text()
    compile_stage = next(s for s in STAGES if s.name == "compile")
    rec = run_stage(cfg, compile_stage, cfg.run_dir, force=True)
    assert (cfg.run_dir / "compile" / "index.jsonl").read_text() == index1
    assert rec["seconds"] < 5  # every job served from the content-addressed cache
    assert (
        json.loads((cfg.run_dir / "compile" / "summary.json").read_text())["processes_started"] == 0
    )


def test_more_compiler_versions_per_file(tmp_path):
    """compile.versions=2: each file also under the oldest installed solc its pragmas allow."""
    from evmlm.solc.versions import satisfying_versions, spread_versions

    assert spread_versions(["0.8.37", "0.8.30", "0.8.24", "0.8.20"], 3) == [
        "0.8.37",
        "0.8.30",
        "0.8.20",
    ]
    assert spread_versions(["0.8.37", "0.8.20"], 5) == ["0.8.37", "0.8.20"]
    assert spread_versions(["0.5.17"], 2) == ["0.5.17"] and spread_versions([], 2) == []

    root = tmp_path / "src"
    (root / "contracts").mkdir(parents=True)
    (root / "contracts/Old.sol").write_text(FILES["contracts/Old.sol"])
    (root / "contracts/Broken.sol").write_text(FILES["contracts/Broken.sol"])
    cfg = _config(tmp_path, root, **{"compile.settings": ["opt200"], "compile.versions": 2})
    recs = run_pipeline(cfg, until="compile")
    rows = [r for r in read_index(cfg.run_dir / "compile") if r["path"] == "contracts/Old.sol"]
    allowed = satisfying_versions({"Old.sol": ["^0.5.0"]})
    assert [r["solc"] for r in rows] == [allowed[0], allowed[-1]] and allowed[0] != allowed[-1]
    assert (
        [r["status"] for r in rows] == ["ok", "ok"]
        and rows[1]["extra_version"]
        and "extra_version" not in rows[0]
    )
    a, b = (load_result(cfg.run_dir / "compile", r["key"]) for r in rows)
    assert (
        a.version != b.version
        and a.contract("Old").method_identifiers == b.contract("Old").method_identifiers
    )
    broken = [r for r in read_index(cfg.run_dir / "compile") if r["path"] == "contracts/Broken.sol"]
    assert len(broken) == 2 and all(
        r["status"] == "failed" for r in broken
    )  # recorded under both, not raised
    assert recs[1]["summary"]["extra_version_jobs_ok"] == 1 and recs[1]["summary"]["files_ok"] == 1
