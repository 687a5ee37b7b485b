"""Shared fixtures for the training tests: real OpenZeppelin 5.0.2 pairs (tests/fixtures/train),
a byte-level BPE trained on them, and a tiny (~0.3M parameter) Llama saved to disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "train"


@pytest.fixture(scope="session", autouse=True)
def _threads() -> None:
    import torch

    from evmlm.train.threads import effective_threads

    torch.set_num_threads(effective_threads(2))  # 1 when the shared CPU is oversubscribed


@pytest.fixture(scope="session")
def pairs() -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in (FIXTURES / "pairs.jsonl").read_text().splitlines()
        if line.strip()
    ]


@pytest.fixture(scope="session")
def sources() -> list[tuple[str, str]]:
    return [(p.name, p.read_text()) for p in sorted((FIXTURES / "sources").glob("*.sol"))]


@pytest.fixture(scope="session")
def tokenizer(pairs: list[dict[str, Any]], sources: list[tuple[str, str]]) -> Any:
    from evmlm.train.tokenizer import train_tokenizer

    return train_tokenizer(
        [t for _, t in sources] + [r["tac"] for r in pairs] + [r["solidity"] for r in pairs], 1024
    )


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A randomly initialised ``tiny`` Llama with the fixture tokenizer, saved as an HF folder."""
    from evmlm.models import build_model

    d = tmp_path_factory.mktemp("tiny_base")
    model = build_model(
        "tiny",
        len(tokenizer),
        seed=0,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(str(d))
    tokenizer.save_pretrained(str(d))
    return d


def split(pairs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in pairs if r["split"] == name]
