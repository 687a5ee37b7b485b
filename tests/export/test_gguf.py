"""GGUF export and the llama.cpp backend, with real llama.cpp on a tiny model (seconds)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, TRAINED_LENGTH, requires_llama_cpp

# Logits of the tiny random model are O(1) (max |logit| 1.9 on the test's text); float16 weights
# move them by < 1e-3 (measured max 0.0007 through llama.cpp, 0.0005 through transformers'
# GGUF loader): the f16 file must match the float32 model's logits within 0.02 either way.
F16_LOGIT_TOLERANCE = 0.02


@requires_llama_cpp
def test_export_writes_gguf_files_that_llama_cpp_loads(exported: tuple[Path, Any]) -> None:
    out, report = exported
    for t in ("f16", "q8_0", "q4_k_m"):
        f = out / f"model-{t}.gguf"
        assert f.read_bytes()[:4] == b"GGUF"
        assert report["files"][t]["loads"] is True
    sizes = [report["files"][t]["bytes"] for t in ("f16", "q8_0", "q4_k_m")]
    assert sizes[0] > sizes[1] > sizes[2]  # quantized files are smaller
    assert (out / "tokenizer.json").is_file()
    assert json.loads((out / "report.json").read_text())["line"] == report["line"]
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))  # staging removed


@requires_llama_cpp
def test_llama_cpp_tokenises_real_prompts_as_the_hf_tokenizer(
    exported: tuple[Path, Any], records: list[dict[str, Any]]
) -> None:
    from transformers import AutoTokenizer

    from evmlm.export.checks import check_tokenisation, record_texts
    from evmlm.train.llamacpp import LlamaCppModel

    out, report = exported
    for t in ("f16", "q8_0", "q4_k_m"):
        assert report["files"][t]["tokenisation"] == {
            "texts": 46,
            "mismatches": 0,
            "first_mismatch": None,
        }
    # negative control: a tokenizer that pre-tokenises differently (prefix space) mismatches
    other = AutoTokenizer.from_pretrained(str(out))
    other.backend_tokenizer.pre_tokenizer.add_prefix_space = True
    texts = [p + c for p, c in record_texts(records[:5])]
    res = check_tokenisation(LlamaCppModel(out / "model-f16.gguf"), other, texts)
    assert res["mismatches"] == 5 and res["first_mismatch"]["position"] < 5


@requires_llama_cpp
def test_f16_logits_match_transformers_and_quantization_costs_more(
    exported: tuple[Path, Any], tiny_model: Path
) -> None:
    """The f16 file loaded by llama.cpp and by transformers (``gguf_file=``) against the original
    float32 model: max |logit difference| within F16_LOGIT_TOLERANCE; q4_k_m differs more."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evmlm.train.llamacpp import LlamaCppModel

    out, report = exported
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    ids = tok("function transfer(address to, uint256 amount) external returns (bool) {")[
        "input_ids"
    ]
    hf = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32).eval()
    from_gguf = AutoModelForCausalLM.from_pretrained(
        str(out), gguf_file="model-f16.gguf", dtype=torch.float32
    ).eval()
    with torch.no_grad():
        want = hf(torch.tensor([ids])).logits[0].numpy()
        via_transformers = from_gguf(torch.tensor([ids])).logits[0].numpy()
    via_llama_cpp = LlamaCppModel(out / "model-f16.gguf", logits_all=True).logits(ids)
    assert np.abs(via_transformers - want).max() < F16_LOGIT_TOLERANCE
    assert np.abs(via_llama_cpp[:, : want.shape[1]] - want).max() < F16_LOGIT_TOLERANCE
    f16, q4 = report["files"]["f16"]["logits"], report["files"]["q4_k_m"]["logits"]
    assert f16["max_abs_diff"] < F16_LOGIT_TOLERANCE
    assert q4["max_abs_diff"] > f16["max_abs_diff"]  # 4-bit weights cost more than 16-bit
    assert f16["positions"] > 100 and f16["top1_agreement"] > 0.9


@requires_llama_cpp
def test_greedy_continuations_agree_or_diverge_only_at_near_ties(
    exported: tuple[Path, Any],
) -> None:
    g = exported[1]["files"]["f16"]["greedy"]
    assert g["prompts"] == 6
    assert g["identical"] + len(g["divergences"]) == 6
    for d in g["divergences"]:  # a random model's logits are flat: only near ties may differ
        assert abs(d["hf_gap"]) < F16_LOGIT_TOLERANCE, d
    assert "q8_0" in exported[1]["line"] and "greedy identical" in exported[1]["line"]


@requires_llama_cpp
def test_backend_batched_generation_equals_one_at_a_time_and_streams(
    exported: tuple[Path, Any], records: list[dict[str, Any]]
) -> None:
    from evmlm.decompile.generation import generate_completions
    from evmlm.train import load_for_inference
    from evmlm.train.inference import SamplingConfig, sample
    from evmlm.train.prompt import fit_prompt

    out, _ = exported
    model, tok = load_for_inference(out / "model-q8_0.gguf")
    assert model.config.max_position_embeddings == 256
    prompts = [
        fit_prompt(r["tac"], r.get("signature"), r.get("contract_context"), tok, 200)
        for r in records[:3]
    ]
    assert len({len(tok(p)["input_ids"]) for p in prompts}) > 1  # left padding is exercised
    batched = generate_completions(model, tok, prompts, max_new_tokens=12, batch_size=3)
    single = generate_completions(model, tok, prompts, max_new_tokens=12, batch_size=1)
    assert [t for t, _ in batched] == [t for t, _ in single]
    pieces: list[str] = []
    cfg = SamplingConfig(max_new_tokens=12, temperature=0)
    streamed = sample(model, tok, prompts[0], cfg, on_text=pieces.append)
    assert streamed == "".join(pieces) == sample(model, tok, prompts[0], cfg)
    a = sample(model, tok, prompts[0], SamplingConfig(max_new_tokens=12, seed=1))
    assert a == sample(model, tok, prompts[0], SamplingConfig(max_new_tokens=12, seed=1))


@requires_llama_cpp
def test_gguf_keeps_the_fine_tuned_prompt_budget(
    exported: tuple[Path, Any], tiny_model: Path, tmp_path: Path
) -> None:
    """The export copies training_info.json beside the files, so llama.cpp gets the prompt
    budget the HF model gets (the fine-tuned max_length, not the whole context)."""
    import shutil

    from evmlm.decompile.generation import generation_budget, trained_length
    from evmlm.train import load_for_inference

    out, _ = exported
    gg, _ = load_for_inference(out / "model-q8_0.gguf")
    hf, _ = load_for_inference(tiny_model)
    assert trained_length(gg) == trained_length(hf) == TRAINED_LENGTH
    assert generation_budget(gg, 16) == generation_budget(hf, 16) == (TRAINED_LENGTH - 16, 16)
    # negative control: the same file without the record beside it has its whole context
    for f in ("model-q8_0.gguf", "tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(out / f, tmp_path / f)
    bare, _ = load_for_inference(tmp_path / "model-q8_0.gguf")
    assert trained_length(bare) is None
    assert generation_budget(bare, 16) == (256 - 16, 16)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """``cli(*args) -> (status, stdout, stderr)`` through :func:`evmlm.cli.run_cli` in-process
    (the body of the ``evmlm`` entry point); the root logger is restored afterwards."""
    from evmlm.cli import run_cli

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def call(*args: str) -> tuple[int, str, str]:
        status = run_cli(list(args))
        out = capsys.readouterr()
        return status, out.out, out.err

    yield call
    root.handlers[:], root.level = handlers, level


@requires_llama_cpp
def test_cli_sample_with_a_gguf_file_and_bad_gguf_paths(
    exported: tuple[Path, Any], tmp_path: Path, cli: Any
) -> None:
    out, _ = exported
    status, stdout, stderr = cli(
        "sample", "--model", str(out / "model-f16.gguf"), "-p", "<|tac|>x", "--max-tokens", "5"
    )
    assert status == 0, stderr
    assert stdout.startswith("<|tac|>x") and len(stdout) > len("<|tac|>x\n")
    bad = tmp_path / "not.gguf"
    bad.write_text("hello")
    for path, words in ((bad, "not a GGUF file"), (tmp_path / "none.gguf", "no such GGUF")):
        status, _, stderr = cli("sample", "--model", str(path), "-p", "x")
        assert status == 2 and words in stderr, stderr
        assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_without_llama_cpp_export_and_backend_say_so_in_one_line(
    tmp_path: Path, tiny_model: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs with or without llama-cpp-python: ``import llama_cpp`` is made to fail."""
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import raises ImportError
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    runs = [
        cli("export", "gguf", "--model", str(tiny_model), "-o", str(tmp_path / "o")),
        cli("sample", "--model", str(gguf), "-p", "x"),
    ]
    for status, _, stderr in runs:
        assert status == 2, stderr
        assert "llama-cpp-python is not installed" in stderr and "setup.sh" in stderr
        assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_unknown_quant_type_is_a_one_line_usage_error(tiny_model: Path, cli: Any) -> None:
    status, _, stderr = cli("export", "gguf", "--model", str(tiny_model), "--quant", "f16,q9_x")
    assert status == 2 and "'q9_x': unknown type" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1


def test_gpt2_pre_tokenizer_is_recognised_only_when_it_is_gpt2s(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    from evmlm.export.converter import gpt2_byte_level

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    assert gpt2_byte_level(tok)
    tok.backend_tokenizer.pre_tokenizer.add_prefix_space = True
    assert not gpt2_byte_level(tok)


def test_check_records_come_from_the_split_then_the_others(
    records: list[dict[str, Any]], tmp_path: Path
) -> None:
    from evmlm.dataset.export import export
    from evmlm.export.stage import check_records

    export(records, tmp_path)
    n_test = sum(r["split"] == "test" for r in records)
    got = check_records(tmp_path, "test", n_test + 2)
    assert len(got) == n_test + 2
    test_ids = {r["id"] for r in records if r["split"] == "test"}
    assert {r["id"] for r in got[:n_test]} == test_ids  # the split's own records first
    assert all(r["split"] == "validation" for r in got[n_test:])
    assert len(check_records(tmp_path, "test", 1)) == 1


def test_export_stage_is_off_by_default() -> None:
    from evmlm.config import RunConfig
    from evmlm.export.stage import run_stage
    from evmlm.pipeline import STAGES, StageContext, stage_config

    stage = next(s for s in STAGES if s.name == "export")
    cfg = RunConfig()
    assert cfg.export.enabled is False and cfg.export.quants == ("f16", "q8_0", "q4_k_m")
    ctx = StageContext(config=stage_config(cfg, stage), run_dir=Path("unused"), stage=stage)
    assert run_stage(ctx)["line"].startswith("off")


@requires_llama_cpp
def test_decompile_runs_through_a_gguf_file(exported: tuple[Path, Any], solcjs: Any) -> None:
    """``decompile`` with a GGUF model: the same path as an HF folder (lift, draft, prompts,
    generation through llama.cpp): one function per selector of real solc output."""
    from evmlm.config import DecompileConfig
    from evmlm.decompile import decompile

    piggy = (ROOT / "tests" / "fixtures" / "evaluate" / "Piggy.sol").read_text()
    c = solcjs({"Piggy.sol": piggy})["contracts"]["Piggy.sol"]["Piggy"]
    res = decompile(
        {"deployedBytecode": c["evm"]["deployedBytecode"]["object"], "abi": c["abi"]},
        exported[0] / "model-q4_k_m.gguf",
        config=DecompileConfig(max_new_tokens=8, verify=False),
    )
    want = {"0x" + s for s in c["evm"]["methodIdentifiers"].values()}
    assert want <= {f.selector for f in res.functions}
    assert res.generate_seconds > 0  # the model refined the drafts (none without a model)


@requires_llama_cpp
def test_a_smaller_context_is_honoured_not_overflowed(exported: tuple[Path, Any]) -> None:
    """llama.cpp pads the context it allocates (100 → 256 tokens) but llama-cpp-python keeps
    100 ids: the model reports 100, and generation stops there instead of overflowing."""
    import torch

    from evmlm.train.llamacpp import LlamaCppModel

    m = LlamaCppModel(exported[0] / "model-f16.gguf", n_ctx=100)
    assert m.config.max_position_embeddings == 100
    ids = torch.arange(10, 100).unsqueeze(0)  # 90 prompt tokens: room for 10 more
    out = m.generate(ids, max_new_tokens=50, eos_token_id=-1, pad_token_id=1)
    assert out.shape == (1, 100)
