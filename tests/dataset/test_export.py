from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from evmlm.dataset import load_split
from evmlm.dataset.export import FIELDS, DatasetNotFoundError, export
from evmlm.dataset.pairing import resolve_contract
from evmlm.dataset.split import SPLITS

from .conftest import record


def _records(result) -> list[dict]:
    """Records whose Solidity/context/offsets come from the real compiled fixture."""
    art = next(a for a in result.contracts if a.name == "Token")
    fns, _ = resolve_contract(result, art)
    out = []
    for i, f in enumerate(fns):
        r = record(
            i,
            f.solidity,
            contract="Token.sol:Token",
            selector=f.selector,
            signature=f.signature,
            contract_context=f.contract_context,
            source_start=f.source_start,
            source_length=f.source_length,
            kind=f.kind,
            cluster=f"{i:016x}",
        )
        r["split"] = SPLITS[i % 3]
        out.append(r)
    return out


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_export_round_trip(tmp_path, token_opt):
    recs = _records(token_opt)
    sizes = export(recs, tmp_path)
    assert sizes == {s: sum(1 for r in recs if r["split"] == s) for s in SPLITS}
    lines = [
        json.loads(x) for x in (tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(lines) == len(recs) and list(lines[0]) == list(FIELDS)
    by_id = {r["id"]: r for r in recs}
    for row in lines:
        assert row["solidity"] == by_id[row["id"]]["solidity"]
    dd = datasets.load_from_disk(str(tmp_path / "hf"))
    assert set(dd) == set(SPLITS)
    train = load_split(tmp_path, "train")
    assert train.num_rows == sizes["train"] and train.column_names == list(FIELDS)
    assert train[0] == next(x for x in lines if x["id"] == train[0]["id"])
    js = datasets.load_dataset("json", data_files=str(tmp_path / "pairs.jsonl"), split="train")
    assert js.num_rows == len(recs) and set(js.column_names) == set(FIELDS)
    assert sorted(js["id"]) == sorted(by_id)
    pt = pq.read_table(tmp_path / "parquet" / "validation.parquet")
    assert pt.num_rows == sizes["validation"] and pt.column_names == list(FIELDS)


def test_export_is_byte_identical_on_rebuild(tmp_path, token_opt):
    recs = _records(token_opt)
    export(recs, tmp_path / "a")
    export(list(reversed([dict(r) for r in recs])), tmp_path / "b")
    export(recs, tmp_path / "a")  # overwriting an existing export
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_load_split_errors_name_the_folder_and_split(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no built dataset"):
        load_split(tmp_path, "train")
    with pytest.raises(DatasetNotFoundError, match="unknown split"):
        load_split(tmp_path, "dev")


def test_empty_split_keeps_the_schema_and_loads(tmp_path, token_opt):
    recs = [r for r in _records(token_opt) if r["split"] != "test"]
    sizes = export(recs, tmp_path)
    assert sizes["test"] == 0
    test = load_split(tmp_path, "test")
    assert test.num_rows == 0 and test.column_names == list(FIELDS)
    assert pq.read_table(tmp_path / "parquet" / "test.parquet").column_names == list(FIELDS)
