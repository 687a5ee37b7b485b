"""HF dataset loaders: the real `datasets` loading code on small local Parquet files in each dataset's schema."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evmlm.corpus.hf import LOADERS, iter_records, write_record
from evmlm.corpus.packages import CorpusError

ERC20ISH = "pragma solidity ^0.8.0;\ncontract Coin { mapping(address => uint) public balanceOf; }\n"
MULTI = json.dumps(
    {
        "contracts/Coin.sol": {"content": ERC20ISH},
        "contracts/I.sol": {"content": "pragma solidity ^0.8.0;\ninterface I {}\n"},
    }
)


def _write(path: Path, rows: list[dict]) -> str:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def test_andstor_smart_contracts_mapping(tmp_path):
    base = {
        "abi": "[]",
        "compiler_version": "v0.8.7+commit.e28d00a7",
        "optimization_used": False,
        "runs": 200,
        "constructor_arguments": "",
        "evm_version": "Default",
        "library": "",
        "proxy": False,
        "implementation": "",
        "swarm_source": "",
    }
    rows = [
        base
        | {
            "contract_name": "Coin",
            "contract_address": "0xB3862CA215D5ED2DE22734ED001D701ADF0A30B4",
            "language": "Solidity",
            "source_code": ERC20ISH,
            "license_type": "MIT",
        },
        base
        | {
            "contract_name": "Vy",
            "contract_address": "0x" + "ab" * 20,
            "language": "Vyper",
            "source_code": "# @version 0.3.7",
            "license_type": "None",
        },
        base
        | {
            "contract_name": "Coin",
            "contract_address": "0x" + "cd" * 20,
            "language": "Solidity",
            "source_code": MULTI,
            "license_type": "None",
        },
    ]
    f = _write(tmp_path / "andstor.parquet", rows)
    recs = list(iter_records("andstor/smart_contracts", data_files=f))
    assert [r.key for r in recs] == [
        "0xb3862ca215d5ed2de22734ed001d701adf0a30b4",
        "0x" + "cd" * 20,
    ]  # Vyper dropped
    assert recs[0].sources == {"Coin.sol": ERC20ISH} and recs[0].license == "MIT"
    assert (
        set(recs[1].sources) == {"contracts/Coin.sol", "contracts/I.sol"}
        and recs[1].license is None
    )


def test_seyyedaliayati_solidity_dataset_mapping(tmp_path):
    def row(repo, path, content, is_test=False):
        return {
            "hash": "h" + path,
            "size": len(content),
            "ext": "sol",
            "lang": "Solidity",
            "is_test": is_test,
            "repo_id": 1,
            "repo_name": repo,
            "repo_head": "abc",
            "repo_path": path,
            "content_tokens": 10,
            "content_chars": len(content),
            "content": content,
        }

    rows = [
        row("alice/coins", "src/Coin.sol", ERC20ISH),
        row("alice/coins", "test/Coin.t.sol", "contract T {}", is_test=True),
        row("alice/coins", "src/I.sol", "interface I {}"),
        row("bob/vault", "Vault.sol", "contract Vault {}"),
    ]
    f = _write(tmp_path / "seyyed.parquet", rows)
    recs = {r.key: r for r in iter_records("seyyedaliayati/solidity-dataset", data_files=f)}
    assert set(recs) == {"alice/coins", "bob/vault"}
    assert set(recs["alice/coins"].sources) == {
        "src/Coin.sol",
        "src/I.sol",
    }  # rows of one repo grouped, tests dropped
    pkg = write_record(recs["alice/coins"], tmp_path / "out", "seyyedaliayati/solidity-dataset")
    assert sorted(pkg.sol_files()) == ["src/Coin.sol", "src/I.sol"] and pkg.source == "hf"


def test_slither_audited_mapping_and_max_rows(tmp_path):
    rows = [
        {
            "address": "0x006699d34AA3013605d468d2755A2Fe59A16B12B",
            "source_code": ERC20ISH,
            "bytecode": "0x6080",
            "slither": [4],
        },
        {
            "address": "0x00c83aeCC790e8a4453e5dD3B0B4b3680501a7A7",
            "source_code": "{" + MULTI + "}",
            "bytecode": "0x6080",
            "slither": [6, 4],
        },
        {
            "address": "0x010c5322d78c88ca18282b0a072a8913648b3038",
            "source_code": "",
            "bytecode": "0x",
            "slither": [],
        },
    ]
    f = _write(tmp_path / "slither.parquet", rows)
    recs = list(iter_records("mwritescode/slither-audited-smart-contracts", data_files=f))
    assert len(recs) == 2  # the empty source dropped
    assert recs[0].sources == {"C_006699d3.sol": ERC20ISH}
    assert set(recs[1].sources) == {"contracts/Coin.sol", "contracts/I.sol"}
    assert (
        len(
            list(
                iter_records(
                    "mwritescode/slither-audited-smart-contracts", data_files=f, max_rows=1
                )
            )
        )
        == 1
    )


def test_unknown_dataset_and_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(CorpusError, match="unknown; supported"):
        list(iter_records("someone/else"))
    with pytest.raises(CorpusError, match="matches no file"):
        list(iter_records("andstor/smart_contracts", data_files=str(tmp_path / "nope.parquet")))
    assert set(LOADERS) == {
        "andstor/smart_contracts",
        "seyyedaliayati/solidity-dataset",
        "mwritescode/slither-audited-smart-contracts",
    }


def test_corpus_stage_with_an_hf_source(tmp_path):
    from evmlm.config import load_config
    from evmlm.corpus import iter_sources
    from evmlm.pipeline import run_pipeline

    rows = [
        {
            "contract_name": "Coin",
            "contract_address": "0x" + "cd" * 20,
            "language": "Solidity",
            "source_code": MULTI,
            "license_type": "MIT",
            "abi": "[]",
            "compiler_version": "v0.8.7",
            "optimization_used": True,
            "runs": 200,
            "constructor_arguments": "",
            "evm_version": "Default",
            "library": "",
            "proxy": False,
            "implementation": "",
            "swarm_source": "",
        }
    ]
    f = _write(tmp_path / "andstor.parquet", rows)
    cfg = load_config(
        None,
        {
            "run.runs_dir": str(tmp_path / "runs"),
            "corpus.sources": ["hf"],
            "corpus.hf_datasets": ["andstor/smart_contracts"],
            "corpus.hf_data_files": f,
        },
    )
    rec = run_pipeline(cfg, until="corpus")[0]
    files = {s.path: s for s in iter_sources(cfg.run_dir / "corpus")}
    assert (
        set(files) == {"contracts/Coin.sol", "contracts/I.sol"}
        and files["contracts/Coin.sol"].text == ERC20ISH
    )
    assert (
        files["contracts/Coin.sol"].license == "MIT"
        and files["contracts/Coin.sol"].version == "andstor/smart_contracts:0x" + "cd" * 20
    )
    assert rec["summary"]["files"] == 2


def test_records_with_bad_file_names_are_skipped_and_write_nothing(tmp_path):
    from evmlm.config import load_config
    from evmlm.corpus import iter_sources
    from evmlm.corpus.etherscan import MalformedAnswerError
    from evmlm.corpus.hf import ContractRecord
    from evmlm.pipeline import run_pipeline

    bad = ContractRecord(key="evil", sources={"ok.sol": ERC20ISH, "../../escape.sol": ERC20ISH})
    with pytest.raises(MalformedAnswerError, match="cannot be a file"):
        write_record(bad, tmp_path / "out", "andstor/smart_contracts")
    assert not (tmp_path / "out").exists() or not any(
        p.is_file() for p in (tmp_path / "out").rglob("*")
    )
    base = {
        "language": "Solidity",
        "license_type": "MIT",
        "abi": "[]",
        "compiler_version": "v0.8.7",
        "optimization_used": True,
        "runs": 200,
        "constructor_arguments": "",
        "evm_version": "Default",
        "library": "",
        "proxy": False,
        "implementation": "",
        "swarm_source": "",
    }
    rows = [
        base
        | {"contract_name": "Coin", "contract_address": "0x" + "cd" * 20, "source_code": MULTI},
        base
        | {
            "contract_name": "Coin",
            "contract_address": "0x" + "ce" * 20,
            "source_code": json.dumps(
                {"/a.sol": {"content": ERC20ISH}, "a.sol": {"content": ERC20ISH}}
            ),
        },
    ]
    cfg = load_config(
        None,
        {
            "run.runs_dir": str(tmp_path / "runs"),
            "corpus.sources": ["hf"],
            "corpus.hf_datasets": ["andstor/smart_contracts"],
            "corpus.hf_data_files": _write(tmp_path / "rows.parquet", rows),
        },
    )
    run_pipeline(cfg, until="corpus")  # the bad record is logged and skipped; the dataset goes on
    assert {s.version for s in iter_sources(cfg.run_dir / "corpus")} == {
        "andstor/smart_contracts:0x" + "cd" * 20
    }
