"""Multi-task fixtures: a BPE tokenizer trained on the training fixtures' pairs, tiny configs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ROOT / "tests" / "fixtures" / "train" / "pairs.jsonl"


@pytest.fixture(scope="session", autouse=True)
def _threads() -> None:
    import torch

    from evmlm.train.threads import effective_threads

    torch.set_num_threads(effective_threads(2))


@pytest.fixture(scope="session")
def pairs() -> list[dict[str, Any]]:
    """Real OpenZeppelin 5.0.2 pairs (tests/fixtures/train/pairs.jsonl)."""
    return [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def tokenizer(pairs: list[dict[str, Any]]) -> Any:
    from evmlm.train.tokenizer import train_tokenizer

    return train_tokenizer([r["tac"] for r in pairs] + [r["solidity"] for r in pairs], 1024)


def tiny_config(**kw: Any) -> Any:
    """A 4-layer, 64-wide multi-task config (vocabulary 1024 unless given)."""
    from evmlm.multitask.modeling import MultitaskConfig

    base = dict(
        vocab_size=1024,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=1,
    )
    base.update(kw)
    return MultitaskConfig(**base)
