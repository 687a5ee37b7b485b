"""End to end on real solc-js outputs and the real lifter: pair, wrap, filter, dedup, split, export."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import datasets
import pytest

from evmlm.config import DatasetConfig
from evmlm.dataset import load_split
from evmlm.dataset.build import LiftedContractRef, build_dataset, lifted_functions

from .conftest import load_result

FIXTURES = ("token.noopt", "token.opt200", "old.opt200")


def _compile_dir(tmp: Path) -> Path:
    """A compile stage folder (index.jsonl + results/<key>.json.gz) holding the fixtures."""
    d = tmp / "compile"
    (d / "results").mkdir(parents=True)
    lines = []
    for name in FIXTURES:
        r = load_result(name)
        with gzip.open(d / "results" / f"{r.key}.json.gz", "wt", encoding="utf-8") as f:
            json.dump({"ok": True, "result": r.to_json()}, f)
        lines.append(
            {
                "key": r.key,
                "status": "ok",
                "setting": r.setting.name,
                "path": name,
                "contracts": [c.name for c in r.contracts],
                "deployable": [c.name for c in r.contracts if c.runtime_bytecode],
            }
        )
    (d / "index.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


@pytest.fixture(scope="module")
def lifted():
    from evmlm.evm import lift_contract

    out = {}
    for name in FIXTURES:
        r = load_result(name)
        refs = []
        for a in r.contracts:
            if a.runtime_bytecode:
                lc = lift_contract(a.runtime_bytecode, abi=a.abi, storage_layout=a.storage_layout)
                refs.append(
                    LiftedContractRef(a.source_path, a.name, lifted_functions(lc.functions))
                )
        out[r.key] = refs
    return out


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "_work" not in p.parts
    }


CFG = DatasetConfig(min_tokens=10, near_dup_threshold=0.9, artifact_dirs=())


def test_build_end_to_end_and_rebuild_is_identical(tmp_path, lifted):
    compile_dir = _compile_dir(tmp_path)
    out = tmp_path / "dataset"
    stats = build_dataset(
        compile_dir=compile_dir,
        lift_dir=tmp_path / "lift",
        out_dir=out,
        config=CFG,
        lifted=lifted,
        workers=1,
    )
    b = stats["build"]
    # Token + CappedToken (12 selectors each) x 2 settings + OldCounter (5)
    assert b["pairing"]["resolved"] == 12 * 2 * 2 + 5
    assert b["pairs_corpus"] == 53
    # wrappers (opt200 only): Base (4 implemented public functions) and MathLib (3 internal functions)
    assert b["pairs_wrappers"] == 4 + 3
    assert b["wrappers"]["candidates"] == 2  # token.opt200 and old.opt200 (0.5: too old to wrap)
    assert b["wrappers"]["pairing_abstract"] == 1 and b["wrappers"]["pairing_libraries"] == 1
    assert sum(b["filters"].values()) + b["after_filters"] == b["raw_pairs"]
    assert stats["signature_coverage"]["share"] == 1.0
    assert stats["total_pairs"] == sum(stats["splits"].values()) > 0
    rows = [json.loads(x) for x in (out / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == stats["total_pairs"]
    lib = [
        r
        for r in rows
        if r["origin"] == "wrapper" and r["defining_contract"] == "MathLib.sol:MathLib"
    ]
    assert all(r["contract"].endswith(":MathLib__EvmlmLibrary") for r in lib)
    assert {r["signature"] for r in lib} <= {
        "max(uint256,uint256)",
        "clamp(uint256,uint256,uint256)",
        "sum(uint256[])",
    } and lib
    assert all(
        r["solidity"].startswith("function ") and "internal pure" in r["solidity"] for r in lib
    )
    for r in rows:
        src = (
            load_result("old.opt200" if r["compiler_version"] == "0.5.17" else "token.opt200")
            .sources[r["source_path"]]
            .encode()
        )
        assert (
            src[r["source_start"] : r["source_start"] + r["source_length"]].decode()
            == r["solidity"]
        )
        assert r["tac"].startswith("function ") and r["complexity"] >= 1
    # every pair carries its structural draft (the prompt's <|draft|> field in fine-tuning),
    # the one evaluation computes for the record from the same lift
    assert all(r["draft_error"] is None and r["draft"] for r in rows)
    assert all(
        r["draft"].startswith(f"// {r['selector']}\nfunction ")
        for r in rows
        if r["kind"] == "function"
    )
    _same_draft_as_evaluation(rows, compile_dir, tmp_path)
    assert (out / "README.md").read_text().startswith("# evmlm TAC")
    assert {p.name for p in out.glob("hist_*.png")} == {
        "hist_n_tac_lines.png",
        "hist_n_solidity_tokens.png",
        "hist_complexity.png",
    }
    assert load_split(out, "train").num_rows == stats["splits"]["train"]
    assert datasets.load_dataset(
        "json", data_files=str(out / "pairs.jsonl"), split="train"
    ).num_rows == len(rows)
    assert "0xa9059cbb\ttransfer(address,uint256)" in (out / "signatures.tsv").read_text()

    first = _digest(out)
    # a second build into a fresh folder gives byte-identical exports
    out2 = tmp_path / "dataset2"
    build_dataset(
        compile_dir=compile_dir,
        lift_dir=tmp_path / "lift",
        out_dir=out2,
        config=CFG,
        lifted=lifted,
        workers=1,
    )
    assert _digest(out2) == first

    # resume: a build interrupted after pairing one result (exports missing, shards partly there)
    shards = sorted((out / "_work" / "pairs").glob("*.jsonl"))
    assert len(shards) == 3
    shards[0].unlink()
    for p in ("pairs.jsonl", "stats.json", "README.md"):
        (out / p).unlink()
    build_dataset(
        compile_dir=compile_dir,
        lift_dir=tmp_path / "lift",
        out_dir=out,
        config=CFG,
        lifted=lifted,
        workers=1,
    )
    last = json.loads((out / "_work" / "last_build.json").read_text())
    assert last["pair_shards_reused"] == 2 and last["pair_shards_built"] == 1
    assert last["wrappers"]["reused"] == 2 and last["wrappers"]["built"] == 0
    assert _digest(out) == first


def _same_draft_as_evaluation(rows: list[dict], compile_dir: Path, tmp: Path) -> None:
    """The dataset's ``draft`` is what evaluation drafts for the record (``predict_structural``
    with the record's own compile result; these contracts have no immutables, so the deployed
    runtime code the evaluation lifts is the artifact's) and what its prompt carries."""
    from evmlm.evaluate.runner import Contracts, predict_structural, prompt_drafts
    from evmlm.evaluate.stage import compile_loader

    corpus = [r for r in rows if r["origin"] == "corpus"][:6]
    drafts, failures = predict_structural(corpus, Contracts(compile_loader(compile_dir)))
    assert not failures
    for r in corpus:
        assert drafts[r["id"]][0] == r["draft"], r["id"]
    assert prompt_drafts(corpus, {}) == {r["id"]: r["draft"] for r in corpus}


def test_a_draft_that_fails_is_recorded_not_fatal(token_opt):
    """A TAC the structural decompiler cannot read gives ``draft`` None and the reason in
    ``draft_error``; the record is kept."""
    from evmlm.dataset.records import LiftedFn, add_draft

    art = next(a for a in token_opt.contracts if a.runtime_bytecode)
    rec = {
        "solidity": "function f() public {}",
        "source_path": art.source_path,
        "source_start": 0,
        "compiler_version": token_opt.version,
        "kind": "function",
        "visibility": "public",
    }
    add_draft(rec, art, LiftedFn("0xa9059cbb", "function 0xa9059cbb\n  block ???", 1, 1), token_opt)
    assert rec["draft_error"] and "revert();" in rec["draft"]  # a placeholder body, and why
    bad = dict(rec, source_start=None, solidity=None)
    add_draft(bad, None, LiftedFn("0xa9059cbb", "", 1, 1), token_opt)
    assert bad["draft"] is None and bad["draft_error"].startswith("AttributeError")


def test_package_of_uses_the_manifest_then_the_path():
    from evmlm.dataset.records import package_of

    assert package_of("x/y.sol", {"x/y.sol": "@scope/pkg"}) == "@scope/pkg"
    assert (
        package_of("@balancer-labs/v2-solidity-utils@3.0.1/contracts/A.sol", {})
        == "@balancer-labs/v2-solidity-utils"
    )
    assert package_of("solmate@6.8.0/src/A.sol", {}) == "solmate"
    assert (
        package_of("@openzeppelin/contracts/token/ERC20/ERC20.sol", {}) == "@openzeppelin/contracts"
    )
    assert package_of("A.sol", {}) == ""
