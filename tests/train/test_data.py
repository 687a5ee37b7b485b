from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evmlm.train.data import (
    PackedBlocks,
    TrainingDataError,
    is_heldout,
    read_pairs,
    to_sft_examples,
    write_token_file,
)
from evmlm.train.prompt import SOLIDITY_TOKEN

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "train"


def test_token_file_and_packed_blocks(
    tmp_path: Path, tokenizer: Any, sources: list[tuple[str, str]]
) -> None:
    texts = [t for _, t in sources[:4]]
    n = write_token_file(texts, tokenizer, tmp_path / "train.bin")
    expected = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts)
    assert n == expected == (tmp_path / "train.bin").stat().st_size // 2  # uint16
    raw = np.fromfile(tmp_path / "train.bin", dtype=np.uint16)
    assert (raw == tokenizer.eos_token_id).sum() >= len(texts)
    ds = PackedBlocks(tmp_path / "train.bin", 64)
    assert len(ds) == n // 64
    item = ds[len(ds) - 1]
    assert item["input_ids"].shape == (64,) and item["input_ids"].dtype.is_floating_point is False
    assert item["input_ids"].tolist() == raw[(len(ds) - 1) * 64 : len(ds) * 64].tolist()
    assert item["labels"].tolist() == item["input_ids"].tolist()
    assert len(PackedBlocks(tmp_path / "train.bin", 64, max_blocks=3)) == 3
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_token_file_errors(tmp_path: Path, tokenizer: Any) -> None:
    with pytest.raises(TrainingDataError, match="no text"):
        write_token_file(["", ""], tokenizer, tmp_path / "e.bin")
    assert not (tmp_path / "e.bin").exists()
    write_token_file(["contract A {}"], tokenizer, tmp_path / "short.bin")
    with pytest.raises(TrainingDataError, match="less than one sequence"):
        PackedBlocks(tmp_path / "short.bin", 256)
    with pytest.raises(TrainingDataError, match="not found"):
        PackedBlocks(tmp_path / "missing.bin", 8)


def test_is_heldout_is_deterministic_and_proportional() -> None:
    keys = [f"file{i}.sol" for i in range(4000)]
    share = sum(is_heldout(k, 0.1) for k in keys) / len(keys)
    assert 0.08 < share < 0.12
    assert [is_heldout(k, 0.1) for k in keys[:50]] == [is_heldout(k, 0.1) for k in keys[:50]]


def test_sft_examples_fit_max_length(pairs: list[dict[str, Any]], tokenizer: Any) -> None:
    ex = to_sft_examples(pairs, tokenizer, 256)
    assert ex.n_records == len(pairs) and len(ex.rows) + ex.n_dropped == len(pairs)
    assert ex.n_truncated > 0  # the fixture's TAC does not fit 256 tokens whole
    for row in ex.rows:
        assert row["prompt"].endswith(SOLIDITY_TOKEN) and row["completion"].startswith("\n")
        assert (
            len(tokenizer(row["prompt"] + row["completion"], add_special_tokens=False)["input_ids"])
            + 1
            <= 256
        )
    whole = to_sft_examples(pairs, tokenizer, 100_000)
    assert whole.n_truncated == 0 and whole.n_dropped == 0


def test_read_pairs_from_jsonl(tmp_path: Path) -> None:
    (tmp_path / "pairs.jsonl").write_text((FIXTURES / "pairs.jsonl").read_text())
    assert {r["split"] for r in read_pairs(tmp_path, "validation")} == {"validation"}
    with pytest.raises(TrainingDataError, match="run the dataset stage"):
        read_pairs(tmp_path / "nothing", "train")
