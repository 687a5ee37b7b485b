"""Continued pretraining (evmlm.train.cpt) on a tiny Llama: what trains, param groups, merge,
resume, and the held-out loss before/after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evmlm.config import ConfigError, CptConfig, load_config
from evmlm.train.data import write_token_file


def _cfg(**kw: Any) -> CptConfig:
    base = dict(
        enabled=True,
        context_length=64,
        batch_size=2,
        max_steps=4,
        logging_steps=1,
        eval_steps=2,
        save_steps=2,
        eval_batches=2,
        time_budget_s=None,
        bf16=False,
        lora_r=4,
        lora_alpha=8,
        learning_rate=5e-3,
        embedding_learning_rate=1e-3,
    )
    return CptConfig(**{**base, **kw})


def _data(tmp: Path, tokenizer: Any, sources: list[tuple[str, str]]) -> Path:
    d = tmp / "data"
    write_token_file([t for _, t in sources[:-3]], tokenizer, d / "train.bin")
    write_token_file([t for _, t in sources[-3:]], tokenizer, d / "val.bin")
    return d


def _state(model: Any) -> dict[str, Any]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_lora_on_embeddings_and_lm_head_trains_only_them_and_the_adapters(
    tiny_base: Path, tokenizer: Any, sources: list[tuple[str, str]], tmp_path: Path
) -> None:
    """LoRA targeting only embed_tokens + lm_head: after a few optimizer steps every base tensor
    is bit-identical, and the adapters (embedding and LM head) changed."""
    import torch
    from transformers import Trainer

    from evmlm.train.cpt import param_groups, prepare_model, training_arguments
    from evmlm.train.data import PackedBlocks

    cfg = _cfg(lora_targets="none")  # LoRA on embed_tokens and lm_head only
    model = prepare_model(cfg, tiny_base)
    before = _state(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert any("embed_tokens" in n for n in trainable) and any("lm_head" in n for n in trainable)
    data = _data(tmp_path, tokenizer, sources)
    args = training_arguments(cfg, tmp_path / "ck")
    opt_cls, kw = Trainer.get_optimizer_cls_and_kwargs(args, model)
    kw.pop("lr", None)
    groups = param_groups(model, cfg)
    assert {g["name"]: g["lr"] for g in groups} == {"embeddings": 1e-3}
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=PackedBlocks(data / "train.bin", 64),
        eval_dataset=PackedBlocks(data / "val.bin", 64, max_blocks=2),
        optimizers=(opt_cls(groups, lr=cfg.learning_rate, **kw), None),
    )
    trainer.train()
    after = _state(model)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed <= trainable
    assert any("embed_tokens" in n for n in changed) and any("lm_head" in n for n in changed)
    frozen = [n for n in before if n not in trainable]
    assert frozen and all(torch.equal(before[n], after[n]) for n in frozen)


def test_cpt_trains_merges_and_resumes(
    tiny_base: Path, tokenizer: Any, sources: list[tuple[str, str]], tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from evmlm.train.cpt import cpt

    data = _data(tmp_path, tokenizer, sources)
    out = tmp_path / "cpt"
    r = cpt(_cfg(), base_model=tiny_base, tokenizer=tokenizer, data_dir=data, out_dir=out)
    assert r.steps == 4 and r.resumed_from is None
    assert r.val_loss_after < r.val_loss_before  # lr 5e-3 on the tiny model: it learns
    m = json.loads((out / "model" / "training_info.json").read_text())
    assert m["cpt"]["embedding_learning_rate"] == 1e-3 and m["result"]["steps"] == 4
    assert (out / "loss_curve.png").stat().st_size > 1000 and list((out / "tb").glob("events.*"))
    # the merged model is a plain, untied model whose lm_head differs from the embeddings
    merged = AutoModelForCausalLM.from_pretrained(str(out / "model"))
    assert not merged.config.tie_word_embeddings
    assert not torch.equal(merged.lm_head.weight, merged.model.embed_tokens.weight)
    # resume: two more steps from the newest checkpoint; the 'before' loss is kept
    r2 = cpt(
        _cfg(max_steps=6), base_model=tiny_base, tokenizer=tokenizer, data_dir=data, out_dir=out
    )
    assert r2.resumed_from is not None and r2.resumed_from.endswith("checkpoint-4")
    assert r2.steps == 6 and r2.val_loss_before == r.val_loss_before


def test_cpt_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="cpt.warmup_ratio"):
        load_config(None, {"cpt.warmup_ratio": 1.5})
    with pytest.raises(ConfigError, match="cpt.method"):
        load_config(None, {"cpt.method": "dora"})
    c = load_config(None, {})
    assert c.cpt.seed == 3407 and c.cpt.warmup_ratio == 0.1 and c.model.base == "scratch"
