"""Exclusion rules, import resolution with versioned dependency folders, the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from evmlm.corpus.imports import ImportResolver, apply_remappings, imports_of
from evmlm.corpus.packages import CorpusError, Package, excluded, npm_packages
from evmlm.corpus.stage import build_manifest


@pytest.mark.parametrize(
    ("rel", "why"),
    [
        ("contracts/token/ERC20.sol", None),
        ("src/libraries/Math.sol", None),
        ("contracts/mocks/ERC20Mock.sol", "folder mocks/"),
        ("test/Pool.t.sol", "foundry test/script"),
        ("script/Deploy.s.sol", "foundry test/script"),
        ("contracts/test/TestERC20.sol", "folder test/"),
        ("src/test-helpers/Helper.sol", "folder test-helpers/"),
        ("scripts/Thing.sol", "folder scripts/"),
        ("lib/forge-std/src/Test.sol", "folder lib/"),
        ("contracts/lib/Math.sol", None),  # only a top-level lib/ is vendored code
        ("contracts/TokenMock.sol", "test/mock file name"),
        ("contracts/MockOracle.sol", "test/mock file name"),
        ("contracts/Testament.sol", None),  # "Test" must be a word of its own
        ("README.md", "not .sol"),
    ],
)
def test_exclusion_rules(rel, why):
    assert excluded(rel) == why


def test_imports_of_all_import_forms():
    text = """import "./A.sol";
import {B, C as D} from "../lib/B.sol";
import * as E from '@x/y/E.sol';
import "F.sol" as F;
// import "./Commented.sol";
/* import "./Block.sol"; */
"""
    assert imports_of(text) == ["./A.sol", "../lib/B.sol", "@x/y/E.sol", "F.sol"]


def test_remapping_rules_follow_solc():
    rs = ["@oz/=oz@4/", "pkg/:@oz/=oz@3/", "pkg/sub/:@oz/=oz@2/"]
    assert apply_remappings(rs, "main.sol", "@oz/a.sol") == "oz@4/a.sol"
    assert apply_remappings(rs, "pkg/x.sol", "@oz/a.sol") == "oz@3/a.sol"
    assert (
        apply_remappings(rs, "pkg/sub/y.sol", "@oz/a.sol") == "oz@2/a.sol"
    )  # longest context wins
    assert apply_remappings(rs, "pkg/x.sol", "other/a.sol") == "other/a.sol"


def _pkg(tmp_path: Path, name: str, version: str, files: dict[str, str], **kw) -> Package:
    root = tmp_path / f"{name}@{version}"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return Package(name=name, version=version, root=root, **kw)


def test_versioned_dependency_folders_and_internal_remappings(tmp_path):
    lib3 = _pkg(tmp_path, "@lib/core", "3.0.0", {"Math.sol": "library Math3 {}"})
    lib4 = _pkg(tmp_path, "@lib/core", "4.0.0", {"Math.sol": "library Math4 {}"})
    app = _pkg(
        tmp_path,
        "app",
        "1.0.0",
        {
            "src/A.sol": 'import "@lib/core/Math.sol";\nimport "src/util/U.sol";\nimport "./B.sol";',
            "src/B.sol": "contract B {}",
            "src/util/U.sol": 'import "../B.sol";',
        },
        deps={"@lib/core": "3.0.0"},
        remappings=(("src/", "src/"),),
    )
    other = _pkg(tmp_path, "other", "1.0.0", {"O.sol": 'import "@lib/core/Math.sol";'})
    r = ImportResolver([lib3, lib4, app, other])
    job = r.job(app, ["src/A.sol"])
    assert not job.missing
    assert set(job.sources) == {
        "app/src/A.sol",
        "app/src/B.sol",
        "app/src/util/U.sol",
        "@lib/core@3.0.0/Math.sol",
    }
    assert (
        job.sources["@lib/core@3.0.0/Math.sol"] == "library Math3 {}"
    )  # the declared dependency version
    assert (
        "app/:@lib/core/=@lib/core@3.0.0/" in job.remappings
        and "app/:src/=app/src/" in job.remappings
    )
    undeclared = r.job(other, ["O.sol"])
    assert (
        undeclared.sources.get("@lib/core@4.0.0/Math.sol") == "library Math4 {}"
    )  # the newest version
    broken = r.job(_pkg(tmp_path, "b", "1", {"X.sol": 'import "./Nope.sol";'}), ["X.sol"])
    assert broken.missing == ["b/X.sol: ./Nope.sol"]


def test_bundled_v3_periphery_resolves_openzeppelin_3():
    pk = npm_packages()
    r = ImportResolver(pk)
    periphery = r.find("@uniswap/v3-periphery", "1.4.4")
    if periphery is None or not periphery.root.is_dir():
        pytest.skip("bundled corpora not fetched (scripts/fetch_corpora.py)")
    job = r.job(periphery, ["contracts/base/PeripheryPayments.sol"])
    assert not job.missing
    assert any(p.startswith("@openzeppelin/contracts@3.4.2-solc-0.7/") for p in job.sources)


def test_package_json_pins_every_corpus_entry():
    specs = {p.spec for p in npm_packages()}
    for want in (
        "@openzeppelin/contracts@2.5.1",
        "@openzeppelin/contracts@3.4.2",
        "@openzeppelin/contracts@4.9.6",
        "@openzeppelin/contracts@5.7.0",
        "@openzeppelin/contracts-upgradeable@5.7.0",
        "@uniswap/v4-core@1.0.2",
        "@gnosis.pm/safe-contracts@1.3.0",
        "@safe-global/safe-contracts@1.4.1",
    ):
        assert want in specs
    assert all(p.version[0].isdigit() for p in npm_packages())  # exact versions, no ranges


def test_manifest_entries_and_exclusions(tmp_path):
    pkg = _pkg(
        tmp_path,
        "demo",
        "0.1.0",
        {
            "contracts/Token.sol": "// SPDX-License-Identifier: Apache-2.0\npragma solidity ^0.8.0;\ncontract Token {}",
            "contracts/mocks/M.sol": "contract M {}",
            "test/T.t.sol": "contract T {}",
        },
        license="MIT",
    )
    entries, why = build_manifest([pkg])
    assert [e["path"] for e in entries] == ["demo/contracts/Token.sol"]
    e = entries[0]
    assert (
        e["license"] == "Apache-2.0"
        and e["pragma"] == "^0.8.0"
        and len(e["sha256"]) == 64
        and Path(e["file"]).is_file()
    )
    assert why == {"folder mocks/": 1, "foundry test/script": 1}


def test_missing_corpus_is_a_clear_error(tmp_path):
    from evmlm.corpus.packages import check_fetched

    with pytest.raises(CorpusError, match="fetch_corpora.py"):
        check_fetched((Package(name="x", version="1", root=tmp_path / "nope"),))
