"""Decompile test fixtures: Piggy.sol compiled by the real solc-js, a tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIGGY = ROOT / "tests" / "fixtures" / "evaluate" / "Piggy.sol"


@pytest.fixture(scope="session")
def piggy(solcjs) -> dict[str, Any]:
    """Piggy.sol (written for these tests, outside the corpus) compiled with solc 0.8.26."""
    return solcjs({"Piggy.sol": PIGGY.read_text()})["contracts"]["Piggy.sol"]["Piggy"]


@pytest.fixture(scope="session")
def tiny_model_dir(make_tiny_model) -> Path:
    """An untrained ~1M-parameter Llama (preset ``tiny``) + BPE tokenizer trained on a few files."""
    return make_tiny_model(PIGGY.read_text())
