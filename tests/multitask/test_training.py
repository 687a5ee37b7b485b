"""Multi-task examples (label alignment), a two-step Trainer run with its experiment folder,
and decompilation with a multi-task model (the element classifier beside the code)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from evmlm.dataset.labels import CLASS_INDEX, ELEMENT_INDEX, SEMANTIC_CLASSES
from evmlm.multitask.data import MultitaskCollator, to_examples

ROOT = Path(__file__).resolve().parents[2]


def test_examples_align_classes_to_tokens(pairs: list[dict[str, Any]], tokenizer: Any) -> None:
    rows, stats = to_examples(pairs[:6], tokenizer, 512)
    assert stats.n_examples + stats.n_dropped == 6 and rows
    for r, row in zip([p for p in pairs[:6]], rows):
        n = len(row["input_ids"])
        assert len(row["labels"]) == len(row["semantic_labels"]) == len(row["prompt_mask"]) == n
        start = row["prompt_mask"].index(0)  # first completion token
        assert all(x == -100 for x in row["semantic_labels"][:start])
        assert row["labels"][-1] == tokenizer.eos_token_id
        sem = row["semantic_labels"][start:-1]
        assert all(0 <= c < len(SEMANTIC_CLASSES) for c in sem)
        # the first token after the completion's newline is the `function` keyword
        toks = tokenizer.convert_ids_to_tokens(row["input_ids"][start:])
        first = next(i for i, t in enumerate(toks) if "function" in t)
        assert sem[first] == CLASS_INDEX["kw_function"], (toks[:4], sem[:4])
        assert row["element_labels"][ELEMENT_INDEX["returns_value"]] == float(
            "returns" in r["solidity"].split("{", 1)[0]
        )
    batch = MultitaskCollator(tokenizer.pad_token_id)(rows[:2])
    assert batch["input_ids"].shape == batch["semantic_labels"].shape
    assert batch["element_labels"].shape == (2, len(ELEMENT_INDEX))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """Two optimizer steps of a tiny shared, sparse, uncertainty-weighted run on the fixtures."""
    from evmlm.multitask.training import MultitaskRunConfig, train

    d = tmp_path_factory.mktemp("mt")
    (d / "ds").mkdir()
    shutil.copy(ROOT / "tests" / "fixtures" / "train" / "pairs.jsonl", d / "ds" / "pairs.jsonl")
    tokenizer.save_pretrained(str(d / "tok"))
    cfg = MultitaskRunConfig(
        dataset_dir=str(d / "ds"),
        tokenizer_dir=str(d / "tok"),
        out_dir=str(d / "out"),
        train_limit=8,
        eval_limit=4,
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=2,
        share=2,
        attention="sparse",
        sparse_window=32,
        sparse_top_k=2,
        max_length=256,
        weighting="uncertainty",
        batch_size=2,
        max_steps=2,
        eval_steps=2,
        logging_steps=1,
    )
    summary = train(cfg)
    assert summary["steps"] == 2
    return d / "out"


def test_train_writes_the_experiment_folder(trained: Path) -> None:
    for f in ("config.json", "training_history.json", "evaluation_results.json"):
        assert (trained / f).is_file(), f
    assert json.loads((trained / "config.json").read_text())["weighting"] == "uncertainty"
    hist = json.loads((trained / "training_history.json").read_text())
    logged = [h for h in hist if "loss" in h]
    assert logged and {"detail", "semantic", "element", "consistency", "w_detail"} <= set(logged[0])
    assert any("eval_detail" in h for h in hist)
    res = json.loads((trained / "evaluation_results.json").read_text())
    assert 0 <= res["element_micro_f1"] <= 1 and 0 <= res["semantic_accuracy"] <= 1
    assert res["detail_loss"] > 0 and res["steps"] == 2
    assert (trained / "tb").is_dir() and (trained / "model" / "model.safetensors").is_file()


def test_evaluate_cli_and_bad_config(trained: Path, tmp_path: Path) -> None:
    from evmlm.cli import run_cli

    ds = trained.parent / "ds"
    rc = run_cli(
        ["multitask", "evaluate", "--model", str(trained / "model"), "--dataset", str(ds)]
        + ["--split", "test", "--limit", "3", "--out", str(tmp_path)]
    )
    assert rc == 0
    res = json.loads((tmp_path / "evaluation_results.json").read_text())
    assert res["n_examples"] == 3 and res["split"] == "test"
    bad = tmp_path / "bad.yaml"
    bad.write_text("hidden_size: 64\nno_such_key: 1\n")
    assert run_cli(["multitask", "train", "--config", str(bad)]) == 2
    assert run_cli(["multitask", "train", "--config", str(tmp_path / "missing.yaml")]) == 2
    good = tmp_path / "ok.yaml"
    good.write_text(f"tokenizer_dir: {tmp_path / 'no_tok'}\nout_dir: {tmp_path / 'exp'}\n")
    assert run_cli(["multitask", "train", "--config", str(good)]) == 2  # no tokenizer there
    assert not (tmp_path / "exp").exists()  # nothing written


def test_decompile_with_a_multitask_model_shows_the_classifier(trained: Path, solcjs) -> None:
    from evmlm.config import DecompileConfig
    from evmlm.decompile import decompile

    src = (ROOT / "tests" / "fixtures" / "evaluate" / "Piggy.sol").read_text()
    piggy = solcjs({"Piggy.sol": src})["contracts"]["Piggy.sol"]["Piggy"]
    sigs = {"0x" + sel: sig for sig, sel in piggy["evm"]["methodIdentifiers"].items()}
    res = decompile(
        piggy["evm"]["deployedBytecode"]["object"],
        trained / "model",
        signatures=sigs,
        config=DecompileConfig(max_new_tokens=8, verify=False),
    )
    assert res.functions and all(f.elements for f in res.functions)
    for f in res.functions:
        e = f.elements
        assert set(e["predicted_not_in_code"]) == set(e["predicted"]) - set(e["in_code"])
    assert res.source.count("// elements (classifier):") == len(res.functions)
    flagged = [f for f in res.functions if f.elements["in_code_not_predicted"]]
    assert all("DISAGREES" in res.source for _ in flagged)
