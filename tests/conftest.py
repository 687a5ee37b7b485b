"""Fixtures shared by several test folders."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]


def solcjs_output(
    sources: dict[str, str],
    *,
    module: str = "solc0826",
    optimize: bool = True,
    stop_after_parsing: bool = False,
) -> dict[str, Any]:
    """solc's standard-JSON output for ``sources`` (path -> text), compiled by the real solc-js
    (``module``: an alias from package.json) through node and ``tests/solcjs.js``, without going
    through :mod:`evmlm.solc`. ``stop_after_parsing``: parse only (output: ASTs). Raises
    AssertionError with solc's first error message when solc reports an error."""
    if stop_after_parsing:
        settings: dict[str, Any] = {"stopAfter": "parsing", "outputSelection": {"*": {"": ["ast"]}}}
    else:
        settings = {
            "optimizer": {"enabled": optimize, "runs": 200},
            "outputSelection": {
                "*": {
                    "*": [
                        "abi",
                        "evm.bytecode.object",
                        "evm.deployedBytecode.object",
                        "evm.methodIdentifiers",
                        "storageLayout",
                    ],
                    "": ["ast"],
                }
            },
        }
    job = {
        "language": "Solidity",
        "sources": {p: {"content": t} for p, t in sources.items()},
        "settings": settings,
    }
    proc = subprocess.run(
        ["node", str(ROOT / "tests" / "solcjs.js"), module],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    out = json.loads(proc.stdout)
    errors = [e["formattedMessage"] for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise AssertionError(errors[0])
    return out


@pytest.fixture(scope="session")
def solcjs() -> Callable[..., dict[str, Any]]:
    """The :func:`solcjs_output` helper (the tests are not a package, so it comes as a fixture)."""
    return solcjs_output


@pytest.fixture(scope="session")
def make_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``make(first_text) -> folder``: an untrained ~1M-parameter Llama (preset ``tiny``) with a
    BPE tokenizer trained on ``first_text`` and six fixture Solidity files, saved as a plain HF
    model folder (its output is noise)."""
    from evmlm.models.presets import build_model
    from evmlm.train.tokenizer import train_tokenizer

    def make(first_text: str) -> Path:
        texts = [first_text] + [
            p.read_text()
            for p in sorted((ROOT / "tests" / "fixtures" / "train" / "sources").glob("*.sol"))[:6]
        ]
        tok = train_tokenizer(texts, 600, min_frequency=1, model_max_length=256)
        model = build_model(
            "tiny", len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
        )
        out = tmp_path_factory.mktemp("tiny_model")
        model.save_pretrained(out)
        tok.save_pretrained(out)
        return out

    return make


def _save_hf_base(folder: Path, *, vocab_size: int, num_hidden_layers: int, tied: bool) -> Path:
    """A tiny Llama with a byte-level BPE trained on the fixture Solidity sources (of evmlm's
    tokens only ``<|endoftext|>``), saved as a plain HF folder: a stand-in for a user's local
    pretrained base. Returns ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    sources = ROOT / "tests" / "fixtures" / "train" / "sources"
    texts = [p.read_text() for p in sorted(sources.glob("*.sol"))]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        tie_word_embeddings=tied,
    )
    LlamaForCausalLM(cfg).save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def save_hf_base() -> Callable[..., Path]:
    """``save(folder, *, vocab_size, num_hidden_layers, tied) -> folder``: a tiny local HF base
    (:func:`_save_hf_base`)."""
    return _save_hf_base
