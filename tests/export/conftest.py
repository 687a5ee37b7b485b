"""GGUF export fixtures: a tiny Llama (random weights, evmlm's byte-level BPE) exported once
per session with real llama.cpp, and real dataset records (tests/fixtures/train)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]

#: The explicit marker of every test that needs llama-cpp-python (scripts/setup.sh builds it,
#: so CI runs them); without it they skip with this reason.
requires_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (scripts/setup.sh builds it: docs/gguf.md)",
)


@pytest.fixture(scope="session")
def records() -> list[dict[str, Any]]:
    path = ROOT / "tests" / "fixtures" / "train" / "pairs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


#: ``finetune.max_length`` in the tiny model's training_info.json (its context is 256): the
#: prompt budget at inference (evmlm.decompile.generation.trained_length).
TRAINED_LENGTH = 200


@pytest.fixture(scope="session")
def tiny_model(make_tiny_model: Callable[[str], Path], records: list[dict[str, Any]]) -> Path:
    """A tiny Llama whose tokenizer has also seen the fixture TAC (so prompts are short), with
    the ``training_info.json`` fine-tuning writes (``max_length`` TRAINED_LENGTH)."""
    folder = make_tiny_model("\n".join(r["tac"] for r in records))
    info = {"finetune": {"max_length": TRAINED_LENGTH}}
    (folder / "training_info.json").write_text(json.dumps(info))
    return folder


@pytest.fixture(scope="session")
def exported(
    tiny_model: Path, records: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """``(folder, report)`` of the tiny model exported to f16, q8_0 and q4_k_m."""
    from evmlm.export.checks import CheckConfig
    from evmlm.export.gguf import export_gguf

    out = tmp_path_factory.mktemp("gguf")
    report = export_gguf(
        tiny_model,
        out,
        types=("f16", "q8_0", "q4_k_m"),
        records=records,
        checks=CheckConfig(n_texts=46, n_greedy=6, max_new_tokens=16, n_logit_texts=6),
        threads=1,
    )
    return out, report
