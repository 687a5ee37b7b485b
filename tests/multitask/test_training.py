"""Multi-task examples (label alignment), a two-step Trainer run with its experiment folder,
and decompilation with a multi-task model (the element classifier beside the code)."""

from __future__ import annotations

import json
import re
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


def test_examples_put_the_draft_in_the_prompt(pairs: list[dict[str, Any]], tokenizer: Any) -> None:
    """Like fine-tuning, the prompt holds the record's structural draft (the element classifier
    pools it too: the draft is in the prompt mask)."""
    rec = dict(pairs[0], draft="function probe() { return DRAFTMARK; }")
    (with_draft,), _ = to_examples([rec], tokenizer, 512)
    (without,), _ = to_examples([pairs[0]], tokenizer, 512)
    start = with_draft["prompt_mask"].index(0)
    prompt = tokenizer.decode(with_draft["input_ids"][:start])
    assert "DRAFTMARK" in prompt
    assert "DRAFTMARK" not in tokenizer.decode(without["input_ids"])
    # the completion and its labels do not move
    assert with_draft["labels"][start:] == without["labels"][without["prompt_mask"].index(0) :]


def test_init_from_a_llama_model_keeps_its_logits_and_freezes_below(
    tmp_path: Path, tokenizer: Any
) -> None:
    """init_from copies a saved Llama causal LM (embeddings, layers, norm, tied LM head): the
    multi-task model's detail logits equal the source's; train_layers=1 leaves exactly the last
    block, the final norm and the two new heads trainable, and one step changes only those."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from evmlm.multitask.training import (
        MultitaskConfigError,
        MultitaskRunConfig,
        freeze_below,
        from_saved,
    )

    torch.manual_seed(0)
    src = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    ).eval()
    src.save_pretrained(str(tmp_path / "llama"))
    tokenizer.save_pretrained(str(tmp_path / "llama"))
    cfg = MultitaskRunConfig(init_from=str(tmp_path / "llama"), max_length=256, train_layers=1)
    model = from_saved(cfg).eval()
    assert model.config.num_key_value_heads == 2 and len(model.blocks) == 3
    ids = torch.tensor([[5, 17, 42, 8, 99, 3]])
    with torch.no_grad():
        want = src(input_ids=ids).logits
        got = model(input_ids=ids)
    assert torch.allclose(got.logits, want, atol=1e-5)  # float32, same weights, same order
    assert got.semantic_logits.shape == (1, 6, model.config.num_semantic_classes)
    assert model.lm_head.weight.data_ptr() == model.embed_tokens.weight.data_ptr()

    freeze_below(model, cfg.train_layers)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(
        n.startswith(("blocks.2.", "norm.", "semantic_head.", "element_head.")) for n in trainable
    )
    assert any(n.startswith("blocks.2.") for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(input_ids=ids)
    (out.logits.sum() + out.semantic_logits.sum() + out.element_logits.sum()).backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable and "embed_tokens.weight" not in changed

    # a saved multi-task model continues: every weight, heads included; not its thresholds,
    # which were chosen for the weights training changes
    model.config.element_thresholds = [0.3] * model.config.num_element_types
    model.save_pretrained(str(tmp_path / "mt"))
    tokenizer.save_pretrained(str(tmp_path / "mt"))
    again = from_saved(MultitaskRunConfig(init_from=str(tmp_path / "mt"), max_length=256)).eval()
    assert again.config.element_thresholds is None and again.config.thresholds() == [0.5] * (
        model.config.num_element_types
    )
    model.eval()
    with torch.no_grad():
        a, b = model(input_ids=ids), again(input_ids=ids)
    assert torch.equal(a.element_logits, b.element_logits)
    assert torch.equal(a.semantic_logits, b.semantic_logits) and torch.equal(a.logits, b.logits)

    with pytest.raises(MultitaskConfigError, match="share"):
        MultitaskRunConfig(init_from=str(tmp_path / "llama"), share=2)
    with pytest.raises(MultitaskConfigError, match="train_layers"):
        freeze_below(model, 4)
    with pytest.raises(MultitaskConfigError, match="init_from"):
        from_saved(MultitaskRunConfig(init_from=str(tmp_path / "nothing")))


def test_choose_thresholds_by_hand() -> None:
    import torch

    from evmlm.multitask.training import choose_thresholds, element_counts, micro_f1

    # type 0: both positives at P 0.40 / 0.45 (missed at 0.5); type 1: a negative at P 0.6;
    # type 2: absent, every P below 0.5 (nothing to gain: stays 0.5)
    probs = torch.tensor([[0.40, 0.9, 0.1], [0.45, 0.6, 0.2], [0.10, 0.1, 0.3], [0.20, 0.9, 0.1]])
    labels = torch.tensor([[1.0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0]])
    th = choose_thresholds(probs, labels)
    # first grid value that raises micro-F1 most: 0.20 for type 0 (P > 0.20 keeps 0.40, 0.45
    # but not 0.20), 0.60 for type 1 (P > 0.60 drops the negative at 0.6)
    assert th.tolist() == pytest.approx([0.2, 0.6, 0.5])
    half = micro_f1(*element_counts((probs > 0.5).float(), labels))
    assert half == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))  # tp 2 (type 1), fp 1, fn 2
    assert micro_f1(*element_counts((probs > th).float(), labels)) == 1.0


def test_threshold_rule_is_chosen_held_out() -> None:
    import torch

    from evmlm.multitask.training import choose_threshold_rule, cross_validate_rules

    def rows(pos: list[float], neg: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
        # 8 functions alternating positive / negative, so both 2-fold folds hold each kind
        probs = torch.tensor(
            [[pos[j] if i % 4 < 2 else neg[j] for j in range(len(pos))] for i in range(8)]
        )
        labels = torch.tensor([[1.0 if i % 4 < 2 else 0.0] * len(pos) for i in range(8)])
        return probs, labels

    # types that need different thresholds (0.10 and 0.70): only per-type is right held out
    probs, labels = rows([0.3, 0.9], [0.1, 0.7])
    cv = cross_validate_rules(probs, labels)
    assert cv["per_type"] == 1.0 and cv["shared"] < 1.0 and cv["0.5"] < cv["per_type"]
    assert choose_threshold_rule(probs, labels)[0] == "per_type"
    # one threshold fits both types: shared and per-type tie, the simpler one is chosen
    probs, labels = rows([0.3, 0.4], [0.1, 0.1])
    rule, cv = choose_threshold_rule(probs, labels)
    assert rule == "shared" and cv["shared"] == cv["per_type"] == 1.0 and cv["0.5"] == 0.0
    # right at 0.5 already: no thresholds
    assert choose_threshold_rule(*rows([0.9, 0.8], [0.1, 0.2]))[0] == "0.5"
    with pytest.raises(ValueError, match="at least 2"):
        cross_validate_rules(probs[:1], labels[:1])


def test_calibrate_cli_writes_thresholds_that_evaluate_and_decompile_use(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from evmlm.cli import run_cli
    from evmlm.multitask.elements import element_report
    from evmlm.multitask.training import _load_multitask, predict_elements
    from evmlm.train.prompt import fit_prompt

    model = tmp_path / "model"
    shutil.copytree(trained / "model", model)
    ds = trained.parent / "ds"
    assert run_cli(["multitask", "calibrate", "--model", str(model), "--dataset", str(ds)]) == 0
    th = json.loads((model / "config.json").read_text())["element_thresholds"]
    # what is saved is what the printed rule says: None for 0.5, one value for shared
    rule = re.search(r"rule (\S+) \(held-out", capsys.readouterr().out).group(1)
    if rule == "0.5":
        assert th is None
    else:
        assert rule in ("shared", "per_type") and len(th) == len(ELEMENT_INDEX)
        assert all(0 < t < 1 for t in th) and (rule == "per_type" or len(set(th)) == 1)
    args = ["multitask", "evaluate", "--model", str(model), "--dataset", str(ds)]
    assert run_cli(args + ["--limit", "3", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "evaluation_results.json").read_text())
    assert res["element_thresholds"] == ("0.5" if th is None else "calibrated")
    assert 0 <= res["element_micro_f1_p50"] <= 1
    # never on the split one reports
    assert run_cli(["multitask", "calibrate", "--model", str(model), "--split", "test"]) == 2
    bad = tmp_path / "bad"
    shutil.copytree(model, bad)
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "element_thresholds": [0.5, 2.0]}))
    assert run_cli(["multitask", "evaluate", "--model", str(bad), "--dataset", str(ds)]) == 2
    # the decompile report predicts by the model's thresholds
    m, tok, _ = _load_multitask(model)
    tac = json.loads((ds / "pairs.jsonl").read_text().splitlines()[0])["tac"]
    prompt = fit_prompt(tac, None, None, tok, m.config.max_position_embeddings, None)
    probs = predict_elements(m, tok, prompt)  # the prompt element_report builds
    for t in (0.01, 0.99):
        m.config.element_thresholds = [t] * len(ELEMENT_INDEX)
        got = element_report(m, tok, tac, None, "", None)["predicted"]
        assert got == sorted(e for e, p in probs.items() if p > t)


def test_label_baselines_by_hand() -> None:
    from evmlm.multitask.training import label_baselines

    train = [
        {"semantic_labels": [-100, 1, 2, 1, 2], "element_labels": [1.0, 0.0]},
        {"semantic_labels": [-100, 1, 2, 2], "element_labels": [1.0, 1.0]},
        {"semantic_labels": [-100, 3, 2], "element_labels": [1.0, 0.0]},
    ]
    # followers: -100 -> 1 (2x), 3 (1x); 1 -> 2 (3x); 2 -> 1 (1x), 2 (1x); overall 2 is most common
    test = [{"semantic_labels": [-100, 1, 2, 2], "element_labels": [1.0, 1.0]}]
    b = label_baselines(train, test)
    assert b["semantic_majority_accuracy"] == round(2 / 3, 5)  # class 2 at 2 of 3 positions
    assert b["semantic_bigram_accuracy"] == round(2 / 3, 5)  # 1 ok, 2 ok, 2->1 wrong
    assert b["element_majority_micro_f1"] == round(2 / 3, 5)  # predicts type 0 only: tp 1, fn 1


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (ROOT / "configs" / "multitask").glob("*.yaml"))
)
def test_shipped_multitask_configs_load(name: str) -> None:
    from evmlm.multitask.training import load_run_config

    cfg = load_run_config(ROOT / "configs" / "multitask" / name)
    assert cfg.max_steps >= 1 and cfg.learning_rate > 0
    if cfg.init_from:  # the default-model config: the pretrained layers are not shared
        assert cfg.share == 1 and cfg.train_layers and cfg.head_learning_rate
