from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evmlm.train.prompt import (
    EOS_TOKEN,
    SOLIDITY_TOKEN,
    SPECIAL_TOKENS,
    build_completion,
    build_prompt,
    extract_solidity,
)


def test_prompt_fields_and_boundary(pairs: list[dict[str, Any]]) -> None:
    r = next(p for p in pairs if p["contract_context"])
    prompt = build_prompt(r["tac"], r["signature"], r["contract_context"])
    assert prompt.startswith("<|signature|>" + r["signature"] + "\n<|context|>")
    assert r["tac"].strip() in prompt and r["contract_context"].strip() in prompt
    assert prompt.endswith(SOLIDITY_TOKEN)
    assert build_completion(r["solidity"]) == "\n" + r["solidity"].strip()
    # absent fields are left out entirely
    bare = build_prompt(r["tac"], None, "  ")
    assert bare.startswith("<|tac|>") and "<|signature|>" not in bare and "<|context|>" not in bare


def test_prompt_rejects_empty() -> None:
    with pytest.raises(ValueError, match="tac is empty"):
        build_prompt("  ", "f()", None)
    with pytest.raises(ValueError, match="solidity is empty"):
        build_completion("")


def test_extract_solidity() -> None:
    assert (
        extract_solidity("<|tac|>x\n<|solidity|>\nfunction f() {}\n<|endoftext|>junk")
        == "function f() {}"
    )
    assert extract_solidity("function g() {}" + EOS_TOKEN) == "function g() {}"


def test_prompt_is_token_prefix_of_prompt_plus_completion(
    pairs: list[dict[str, Any]], tokenizer: Any
) -> None:
    """The supervised span starts exactly at the completion for every real pair
    (docs/architecture.md, "Prompt")."""
    for r in pairs:
        p = build_prompt(r["tac"], r["signature"], r["contract_context"])
        c = build_completion(r["solidity"])
        ids_p = tokenizer(p, add_special_tokens=False)["input_ids"]
        ids_pc = tokenizer(p + c, add_special_tokens=False)["input_ids"]
        assert ids_pc[: len(ids_p)] == ids_p
        assert tokenizer.decode(ids_pc[len(ids_p) :]) == c


def test_tokenizer_round_trip(
    tokenizer: Any, sources: list[tuple[str, str]], pairs: list[dict[str, Any]]
) -> None:
    texts = [t for _, t in sources[:5]] + [
        pairs[0]["tac"],
        '// ünïcødé ✓ 💎\n\tstring s = "\\x00";',
        "   leading and trailing   ",
    ]
    for t in texts:
        assert tokenizer.decode(tokenizer(t, add_special_tokens=False)["input_ids"]) == t


def test_special_tokens_are_single_ids(tokenizer: Any, tmp_path: Path) -> None:
    from evmlm.train.tokenizer import load_tokenizer

    for i, t in enumerate(SPECIAL_TOKENS):
        assert tokenizer(t, add_special_tokens=False)["input_ids"] == [i]
    assert (
        tokenizer.eos_token == EOS_TOKEN
        and tokenizer.eos_token_id == 0
        and tokenizer.pad_token_id == 1
    )
    tokenizer.save_pretrained(str(tmp_path))
    again = load_tokenizer(tmp_path)
    text = "<|tac|>v3 = CALLDATALOAD(0x4)\n<|solidity|>\nfunction f() {}"
    assert (
        again(text, add_special_tokens=False)["input_ids"]
        == tokenizer(text, add_special_tokens=False)["input_ids"]
    )
    assert len(again) == len(tokenizer)


def test_tokenizer_errors(tmp_path: Path) -> None:
    from evmlm.errors import EvmlmError
    from evmlm.train.tokenizer import load_tokenizer, train_tokenizer

    with pytest.raises(EvmlmError, match="no text"):
        train_tokenizer(iter(["", ""]), 600)
    with pytest.raises(EvmlmError, match="not a tokenizer directory"):
        load_tokenizer(tmp_path)
