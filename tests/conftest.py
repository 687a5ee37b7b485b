"""Fixtures shared by several test folders."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def make_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``make(first_text) -> folder``: an untrained ~1M-parameter Llama (preset ``tiny``) with a
    BPE tokenizer trained on ``first_text`` and six fixture Solidity files, saved as a plain HF
    model folder (its output is noise)."""
    from evmlm.models.presets import build_model
    from evmlm.train.tokenizer import train_tokenizer

    def make(first_text: str) -> Path:
        texts = [first_text] + [p.read_text() for p in sorted((ROOT / "tests" / "fixtures" / "train" / "sources").glob("*.sol"))[:6]]
        tok = train_tokenizer(texts, 600, min_frequency=1, model_max_length=256)
        model = build_model("tiny", len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        out = tmp_path_factory.mktemp("tiny_model")
        model.save_pretrained(out)
        tok.save_pretrained(out)
        return out

    return make
